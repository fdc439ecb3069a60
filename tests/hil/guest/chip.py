"""The simulated GPIO chip (the kernel's gpio-sim), made through configfs.

A real chip's lines as the kernel's GPIO character device serves them, so lgpio and
gpiozero drive them exactly as on a Pi. The test plays the world outside the chip through
each line's sysfs attributes: `pull` is what a switch or resistor does to an input,
`value` is the level the dock drives on an output.
"""
from __future__ import annotations

import time
from pathlib import Path

CONFIGFS = Path("/sys/kernel/config/gpio-sim")
LINES = 54  # as many as the BCM2835 family's GPIO bank, so BCM number = line offset


class SimChip:
    def __init__(self, name: str = "pendock-hil", lines: int = LINES):
        self.device = CONFIGFS / name
        if self.device.exists():
            raise RuntimeError(f"{self.device} exists already: one HIL run at a time")
        self.device.mkdir()
        bank = self.device / "bank0"
        bank.mkdir()
        (bank / "num_lines").write_text(str(lines))
        (bank / "label").write_text(name)
        (self.device / "live").write_text("1")
        self.lines = lines
        self.label = name
        self.dev_name = (self.device / "dev_name").read_text().strip()  # gpio-sim.0
        self.chip_name = (bank / "chip_name").read_text().strip()  # gpiochip0
        self.number = int(self.chip_name.removeprefix("gpiochip"))
        self.path = Path("/dev") / self.chip_name
        self._sysfs = Path("/sys/devices/platform") / self.dev_name / self.chip_name

    def describe(self) -> str:
        return f"{self.path} (gpio-sim {self.dev_name}, label {self.label}, {self.lines} lines)"

    def _attr(self, line: int, name: str) -> Path:
        return self._sysfs / f"sim_gpio{line}" / name

    def set_pull(self, line: int, high: bool) -> None:
        """What the outside world does to the line: a switch closing, a resistor."""
        self._attr(line, "pull").write_text("pull-up" if high else "pull-down")

    def pull(self, line: int) -> str:
        return self._attr(line, "pull").read_text().strip()

    def level(self, line: int) -> int:
        """The line's level as the chip has it (what a meter on the pin would read)."""
        return int(self._attr(line, "value").read_text().strip())

    def wait_level(self, line: int, level: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.level(line) == level:
                return True
            time.sleep(0.002)
        return self.level(line) == level

    def close(self) -> None:
        (self.device / "live").write_text("0")
        (self.device / "bank0").rmdir()
        self.device.rmdir()
