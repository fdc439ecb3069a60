"""R5: every Python process the dock starts runs with -P, so a file in the working
directory never shadows the installed code: a `flask.py` beside where the demo is started
does not become the page. And no other way of starting Python is left in the code."""
from __future__ import annotations

import re
from pathlib import Path

import appliance
from tests.support.demo import DemoProcess

SOURCE = Path(appliance.__file__).parent


def test_every_python_child_in_the_code_starts_with_dash_p():
    starts = []
    for path in sorted(SOURCE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"\[sys\.executable,", line):
                starts.append((path.relative_to(SOURCE).as_posix(), number, line.strip()))
    assert starts, "no Python child found: the check would prove nothing"
    for where, number, line in starts:
        assert '"-P"' in line or "COMMAND" in line, f"{where}:{number}: {line}"
    from appliance.fleet.process import LinkProcess

    assert LinkProcess.COMMAND[0] == "-P"


def test_a_flask_py_in_the_working_directory_does_not_become_the_page(tmp_path):
    trap = tmp_path / "work"
    trap.mkdir()
    (trap / "flask.py").write_text("raise SystemExit('the working directory shadowed the page')\n")
    demo = DemoProcess(tmp_path / "data", cwd=trap)
    try:
        demo.start(40)
        assert demo.status()["docked"] is not None
    finally:
        demo.stop()
    assert not any("shadowed" in line for line in demo.printed)
