"""The dock's side of the pen's session registers (frame v2).

The pen cannot hear the dock once it is lifted, so the dock opens the pen's next session
while it still sits in the cradle: after the close reading of the session that just ended
(or the first reading of a pen just docked) and before the latch lets it go. The session
that begins at the lift belongs to that tag only if the last reading before the lift
showed the pen took it; otherwise the session carries no tag and closes with its depth
unmeasured (rules.depth_measured).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from appliance.core.model import PenReading
from appliance.hardware import session_link

log = logging.getLogger("pendock.dock")


class SessionRegisters:
    """Which tag the dock last gave the docked pen, and telling the pen a new one."""

    def __init__(self, new_tag: Callable[[], int] = session_link.new_tag):
        self._new_tag = new_tag
        self.tag: int | None = None  # the tag last sent; None until one is

    def needs_opening(self, reading: PenReading | None) -> bool:
        """A docked v2 pen whose registers are not under the tag this dock gave it."""
        return (reading is not None and reading.frame_version >= 2
                and (self.tag is None or reading.session_tag != self.tag))

    def open(self, pen) -> int:
        """Send a fresh tag to the pen (`pen.open_session`); the caller reads again to see it took."""
        self.tag = self._new_tag()
        pen.open_session(self.tag)
        return self.tag

    def tag_for_session(self, reading: PenReading | None) -> int | None:
        """The tag a session starting now may claim: the pen's, if it is the one we gave."""
        if reading is None or self.tag is None or reading.session_tag != self.tag:
            return None
        return self.tag

    def forget(self) -> None:
        """The pen left or another came: the next docked pen gets a fresh tag."""
        self.tag = None
