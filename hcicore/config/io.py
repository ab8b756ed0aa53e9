"""Loading and writing node configs: dict or YAML file → validated model → YAML.

:func:`load_config` checks the schema first, then every semantic check, and raises one
:class:`~hcicore.errors.ValidationError` carrying all problems. Values that break the schema are
set aside before the semantic checks run, and semantic problems under a path that already has
a schema problem are not repeated, so the operator gets every independent problem at once.
"""
from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hcicore.errors import Problem, ValidationError
from hcicore.schema import field_path, schema_problems
from hcicore.secrets import scrub_problems
from hcicore.yamlio import load_yaml_file

from .checks import run_checks
from .model import NodeConfig, from_dict, to_dict
from .password import hash_password


@cache
def _schema_text() -> str:
    return resources.files("hcicore.config").joinpath("schema.json").read_text()


def schema() -> dict[str, Any]:
    """The node config JSON Schema (draft 2020-12), a fresh copy."""
    return json.loads(_schema_text())


# ---- schema pass: report, then set aside what is broken -----------------------------------------
def _delete(data: Any, parts: list[Any]) -> None:
    parent = data
    for part in parts[:-1]:
        parent = parent[part]
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)
    elif isinstance(parent, list) and isinstance(parts[-1], int) and parts[-1] < len(parent):
        del parent[parts[-1]]


def _set_aside_invalid(data: dict[str, Any], validator: jsonschema.protocols.Validator) -> list[str] | None:
    """Remove schema-invalid values in place; return the paths whose semantic problems to drop,
    or None when the data can't be repaired far enough to run the semantic checks."""
    hidden: list[str] = []
    for _ in range(8):
        errors = list(validator.iter_errors(data))
        if not errors:
            return hidden
        for err in sorted(errors, key=lambda e: list(e.absolute_path), reverse=True):
            parts = list(err.absolute_path)
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                allowed = set(err.schema.get("properties", {}))
                for key in set(err.instance) - allowed:
                    err.instance.pop(key)
                continue
            if not parts:
                return None
            # A bad list item shifts its neighbours' indices: hide problems for the whole list.
            hidden.append(field_path(parts[:-1] if isinstance(parts[-1], int) else parts))
            _delete(data, parts)
    return None


def _hidden(problem: Problem, hidden: list[str]) -> bool:
    return any(problem.path == h or problem.path.startswith((h + ".", h + "[")) for h in hidden)


def load_config(data: Any, *, source: str) -> NodeConfig:
    """Validate ``data`` (schema, then semantic checks) and build the model.

    Raises ValidationError with one Problem per problem found. A plain ``node.password`` is
    hashed into ``node.password_hash`` and dropped. ``source`` names the input in top-level
    problems (a file name, ``kernel command line``, ...).
    """
    if data is None:
        raise ValidationError([Problem(source, "is empty", "write a node config (see `hci config schema`)")])
    if not isinstance(data, dict):
        raise ValidationError([Problem(source, f"must be a mapping of sections, not {type(data).__name__}",
                                       "start the file with keys such as install:, node:, cluster:")])
    the_schema = schema()
    try:
        return _load(data, the_schema)
    except ValidationError as exc:  # one rule for secrets, whatever check found the problem
        raise ValidationError(scrub_problems(exc.problems, data, the_schema)) from None


def _load(data: dict[str, Any], the_schema: dict[str, Any]) -> NodeConfig:
    problems = schema_problems(the_schema, data)
    work = copy.deepcopy(data)
    if problems:
        cls = jsonschema.validators.validator_for(the_schema)
        hidden = _set_aside_invalid(work, cls(the_schema))
        if hidden is None:
            raise ValidationError(problems)
    else:
        hidden = []
    cfg = from_dict(work)
    problems += [p for p in run_checks(cfg) if not _hidden(p, hidden)]
    if problems:
        raise ValidationError(problems)
    if cfg.node.password is not None:
        cfg.node.password_hash = hash_password(cfg.node.password)
        cfg.node.password = None
    return cfg


def load_config_file(path: str | Path) -> NodeConfig:
    """Read and validate a YAML node config file."""
    return load_config(load_yaml_file(Path(path)), source=str(path))


def config_dict(cfg: NodeConfig) -> dict[str, Any]:
    """The config as plain data for writing: no plain password (hashed here if still present)."""
    out = to_dict(cfg)
    if cfg.node.password is not None and cfg.node.password_hash is None:
        out["node"]["password_hash"] = hash_password(cfg.node.password)
    return out


def dump_config(cfg: NodeConfig) -> str:
    """YAML text of ``cfg`` that :func:`load_config_file` reads back to an equal model."""
    return yaml.safe_dump(config_dict(cfg), sort_keys=False, default_flow_style=False, width=1000)
