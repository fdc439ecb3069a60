"""The daemon itself (`run_daemon`, as `pendock daemon` runs it) on kernel GPIO lines:
a dock cycle end to end from the seat edge to the latch, light and buzzer lines; then
killed with SIGKILL, the kernel frees its lines and the latch rests held; restarted, it
holds the pen (R1); stopped with SIGTERM, it holds the pen and exits 0."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.daemon.control import ControlClient, ControlError
from tests.hil.guest.harness import CHECKLIST, World, variant_pinmap

READY_TIMEOUT_S = 90  # imports over 9p on an emulated CPU


class Daemon:
    def __init__(self, chip, pinmap_file: Path, folder: Path):
        self.socket = folder / "dock.sock"
        self.log = open(folder / "dockd.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hil.guest.dockd", "--chip", str(chip.number),
             "--pinmap", str(pinmap_file), "--data", str(folder / "data"), "--socket", str(self.socket)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[3],
        )
        self.client = ControlClient(self.socket, timeout=20, via="hil")

    def wait_ready(self) -> dict:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the daemon exited with {self.process.returncode}: {self.read_log()}")
            try:
                return self.client.call("status")
            except ControlError:
                time.sleep(0.1)
        pytest.fail(f"the daemon did not answer in {READY_TIMEOUT_S} s: {self.read_log()}")

    def call(self, cmd: str, **args):
        return self.client.call(cmd, **args)

    def wait_status(self, check, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        status = self.call("status")
        while not check(status) and time.monotonic() < deadline:
            time.sleep(0.01)
            status = self.call("status")
        return status

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


def test_daemon_cycle_then_killed_latch_held_then_restarted_held(chip, tmp_path):
    pinmap = variant_pinmap("shipped", tmp_path)
    pinmap_file = tmp_path / "pinmap-shipped.toml"
    world = World(chip, pinmap)
    world.rest_inputs()
    latch = pinmap["latch"].bcm
    chip.set_pull(latch, False)  # the MOSFET gate's pull-down resistor on the board

    daemon = Daemon(chip, pinmap_file, tmp_path)
    try:
        status = daemon.wait_ready()
        assert status["held"] and status["pin_factory"] == "HilFactory"
        assert not world.is_on("latch")

        world.press("seat", True)  # the pen goes in: the hall switch pulls the seat line low
        status = daemon.wait_status(lambda s: s["docked"] and s["pen"] is not None)
        assert status["held"] and world.wait_light("amber")

        daemon.call("sim.cartridge")
        beeps = world.watch("buzzer")
        status = daemon.call("next_client", ref="HIL-D1", area="face", checklist=CHECKLIST)
        assert not status["held"], status["locks"]
        assert world.wait_on("latch", True)
        assert world.wait_light("green")
        time.sleep(0.5)
        assert beeps.stop() == 1, f"the release beeps once; saw {beeps.pulses} pulses in {beeps.samples} samples"

        os.kill(daemon.process.pid, signal.SIGKILL)  # no handler, no finally: only the kernel
        daemon.process.wait(10)
        assert chip.wait_level(latch, 0, timeout=2.0), "killed daemon: the latch line stayed energised"
    finally:
        daemon.stop()

    again = Daemon(chip, pinmap_file, tmp_path)  # same record, pen still seated with its cartridge
    try:
        status = again.wait_ready()
        status = again.wait_status(lambda s: s["docked"] and s["pen"] is not None)
        assert status["held"], "a restarted daemon must hold the pen until the next client is named"
        assert chip.level(latch) == 0
        again.process.send_signal(signal.SIGTERM)
        assert again.process.wait(20) == 0
        assert chip.level(latch) == 0
    finally:
        again.stop()
