"""Reading YAML input files, turning syntax errors into Problems with the file and line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, ValidationError


def load_yaml_text(text: str, *, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError([Problem(where, f"not valid YAML: {problem}", "fix the YAML syntax")]) from exc


def load_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError([Problem(str(path), f"cannot read: {exc.strerror}", "check the path")]) from exc
    return load_yaml_text(text, source=str(path))
