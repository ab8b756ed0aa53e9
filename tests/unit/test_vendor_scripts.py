"""Console scripts of vendored wheels name the node's interpreter, and their RECORD stays true."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from image.stages.node_services import _record_hash, retarget_scripts

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
        f"../../bin/pygmentize,{_record_hash(old)},{len(old)}\n"
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
    assert rows["../../bin/pygmentize"][1:] == [_record_hash(script), str(len(script))]
    assert rows["pygments/__init__.py"] == ["pygments/__init__.py", "sha256=abc", "10"]


def test_already_right_and_no_scripts_change_nothing(tmp_path: Path) -> None:
    target = make_target(tmp_path, "#!/usr/bin/python3")
    record = (target / "pygments-2.0.dist-info/RECORD").read_text()
    assert retarget_scripts(target, "/usr/bin/python3") == []
    assert (target / "pygments-2.0.dist-info/RECORD").read_text() == record
    assert retarget_scripts(tmp_path / "empty", "/usr/bin/python3") == []
