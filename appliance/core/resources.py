"""Find the files that ship beside the code (hw/, web/) in a checkout and in a wheel.

In a source checkout they sit at the top of the repository; in an installed wheel they
are the packages `appliance.hw` and `appliance.web` (see pyproject.toml).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def _folder(name: str) -> Path:
    in_checkout = _CHECKOUT / name
    if (in_checkout / "__init__.py").exists():
        return in_checkout
    return Path(str(resources.files(f"appliance.{name}")))


def hw_file(name: str) -> Path:
    """A file of hw/ (pin map, frame layout)."""
    return _folder("hw") / name


def web_folder() -> Path:
    """The web/ folder with templates/ and static/."""
    return _folder("web")
