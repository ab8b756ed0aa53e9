"""Console scripts of vendored wheels name the node's interpreter, and their RECORD stays true."""
from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

import pytest

from image.stages.node_services import retarget_scripts


def wheel_hash(data: bytes) -> str:
    """RECORD's hash format (PEP 376/427): urlsafe base64 of the sha256, no padding."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")

pytestmark = pytest.mark.unit


def make_target(tmp_path: Path, shebang: str) -> Path:
    target = tmp_path / "python"
    (target / "bin").mkdir(parents=True)
    (target / "bin/pygmentize").write_text(f"{shebang}\nimport sys\nfrom pygments.cmdline import main\n")
    (target / "bin/helper.sh").write_text("#!/bin/sh\necho hi\n")
    info = target / "pygments-2.0.dist-info"
    info.mkdir()
    old = (target / "bin/pygmentize").read_bytes()
    (info / "RECORD").write_text(
        f"../../bin/pygmentize,{wheel_hash(old)},{len(old)}\n"
        "pygments/__init__.py,sha256=abc,10\n"
        "pygments-2.0.dist-info/RECORD,,\n")
    return target


def test_build_host_interpreter_is_replaced_and_record_matches(tmp_path: Path) -> None:
    target = make_target(tmp_path, "#!/work/main/.venv/bin/python3")
    assert retarget_scripts(target, "/usr/bin/python3") == ["bin/pygmentize"]
    script = (target / "bin/pygmentize").read_bytes()
    assert script.splitlines()[0] == b"#!/usr/bin/python3"
    assert b"/work/main" not in script
    assert (target / "bin/helper.sh").read_text() == "#!/bin/sh\necho hi\n"  # not a Python script
    rows = {row[0]: row for row in csv.reader((target / "pygments-2.0.dist-info/RECORD").open())}
    assert rows["../../bin/pygmentize"][1:] == [wheel_hash(script), str(len(script))]
    assert rows["pygments/__init__.py"] == ["pygments/__init__.py", "sha256=abc", "10"]


def test_already_right_and_no_scripts_change_nothing(tmp_path: Path) -> None:
    target = make_target(tmp_path, "#!/usr/bin/python3")
    record = (target / "pygments-2.0.dist-info/RECORD").read_text()
    assert retarget_scripts(target, "/usr/bin/python3") == []
    assert (target / "pygments-2.0.dist-info/RECORD").read_text() == record
    assert retarget_scripts(tmp_path / "empty", "/usr/bin/python3") == []


def test_long_path_sh_preamble_is_replaced_too(tmp_path: Path) -> None:
    """For a long interpreter path pip writes a /bin/sh preamble that re-execs the Python."""
    long_python = "/check/" + "x" * 150 + "/.venv/bin/python3"
    preamble = "#!/bin/sh\n" + "\'\'\'exec\' " + f'"{long_python}" "$0" "$@"' + "\n\' \'\'\'"
    target = make_target(tmp_path, preamble)
    assert long_python in (target / "bin/pygmentize").read_text()
    assert retarget_scripts(target, "/usr/bin/python3") == ["bin/pygmentize"]
    script = (target / "bin/pygmentize").read_bytes()
    assert script == b"#!/usr/bin/python3\nimport sys\nfrom pygments.cmdline import main\n"
    rows = {row[0]: row for row in csv.reader((target / "pygments-2.0.dist-info/RECORD").open())}
    assert rows["../../bin/pygmentize"][1:] == [wheel_hash(script), str(len(script))]
