"""JSON Schema validation that reports every problem as a Problem with a dotted field path."""
from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from .errors import Problem
from .secrets import kind_of, shown


def field_path(parts: Iterable[Any], prefix: str = "") -> str:
    """``["node", "network", "interfaces", 0, "mac"]`` -> ``node.network.interfaces[0].mac``."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(err: jsonschema.ValidationError) -> tuple[list[Any], str, str]:
    """Return (path parts, what is wrong, how to fix) for one schema error."""
    parts = list(err.absolute_path)
    v = err.validator
    kind = kind_of(err.schema)
    value = shown(err.instance, kind)  # a secret field's value is never formatted (hcicore.secrets)
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        # One problem per unknown key, with the key in the path.
        return parts + [extra[0]] if extra else parts, "unknown key", f"allowed keys here: {allowed}"
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return parts + [missing], "is required", "add this key"
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return parts, f"must be of type {want}, got {type(err.instance).__name__} {value}", f"write a {want}"
    if v == "enum":
        choices = ", ".join(json.dumps(c) for c in err.validator_value)
        return parts, f"{value} is not allowed", f"use one of {choices}"
    if v == "const":
        return parts, f"{value} is not supported", f"use {json.dumps(err.validator_value)}"
    if v == "pattern":
        return parts, f"{value} has the wrong form", f"must match {err.validator_value}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return parts, f"{value} is out of range", f"{v} is {err.validator_value}"
    if v in ("minLength", "minItems"):
        return parts, "is empty or too short", f"{v} is {err.validator_value}"
    if v in ("maxLength", "maxItems"):
        return parts, "is too long", f"{v} is {err.validator_value}"
    if v == "format":
        return parts, f"{value} is not a valid {err.validator_value}", f"write a valid {err.validator_value}"
    return parts, ("is not valid" if kind else err.message), "see the schema (`hci config schema`)"


def schema_problems(schema: dict[str, Any], data: Any, prefix: str = "") -> list[Problem]:
    """Validate ``data``; return one Problem per error (unknown keys: one per key), sorted by path."""
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    problems: list[Problem] = []
    for err in validator.iter_errors(data):
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in sorted(set(err.instance) - allowed):
                problems.append(Problem(field_path(list(err.absolute_path) + [key], prefix), "unknown key",
                                        f"allowed keys here: {', '.join(sorted(allowed))}"))
            continue
        parts, what, fix = _describe(err)
        problems.append(Problem(field_path(parts, prefix), what, fix))
    return sorted(set(problems), key=lambda p: (p.path, p.message))


@cache
def load_schema(package: str, name: str) -> dict[str, Any]:
    """Load a JSON schema shipped as package data."""
    return json.loads(resources.files(package).joinpath(name).read_text())
