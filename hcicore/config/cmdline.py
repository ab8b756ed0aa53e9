"""Node config from the kernel command line: ``hci.<path>=value`` arguments.

Paths are the config's field paths: ``hci.install.device=/dev/vda``,
``hci.node.network.interfaces[0].mac=52:54:00:12:34:56``,
``hci.node.ssh_authorized_keys[0]="ssh-ed25519 AAAA... me"``. Values are typed by the schema:
booleans (``true/false/yes/no/on/off/1/0``; a bare ``hci.install.automatic`` means true),
integers, strings. A list of strings given without an index is split on commas
(``hci.node.ntp=a.pool.ntp.org,b.pool.ntp.org``). Quoting follows the kernel: double quotes
group white space and are removed. Arguments not starting with ``hci.`` are ignored; unknown
``hci.`` keys and bad values are problems, all reported together.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from hcicore.errors import Problem, ValidationError

from .io import schema

PREFIX = "hci."
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def split_args(cmdline: str) -> list[str]:
    """Split like the kernel: white space outside double quotes separates arguments.

    Quotes are removed. Raises ValueError on an unbalanced quote."""
    args: list[str] = []
    current: list[str] = []
    in_quote = False
    started = False
    for ch in cmdline:
        if ch == '"':
            in_quote = not in_quote
            started = True
        elif ch.isspace() and not in_quote:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if in_quote:
        word = "".join(current)  # the key only: the value may be a password
        raise ValueError(f"unbalanced double quote in the value of {word.split('=', 1)[0][:60]}=")
    if started:
        args.append("".join(current))
    return args


def cmdline_value(cmdline: str, prefix: str) -> str | None:
    """The value of a ``<prefix><value>`` argument (``prefix`` ends with ``=``), the last one when
    repeated (as dracut's getarg reads it); None when absent."""
    found = None
    for arg in split_args(cmdline):
        if arg.startswith(prefix):
            found = arg[len(prefix):]
    return found


class _Indexed(dict):  # type: ignore[type-arg]
    """A list under construction: index -> value."""


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type")
    if t is None and "const" in node:
        t = type(node["const"]).__name__.replace("int", "integer").replace("str", "string")
    if t is None and "enum" in node:
        return {"string"}
    return set(t) if isinstance(t, list) else {t} if t else set()


def _coerce(raw: str | None, node: dict[str, Any], path: str, arg: str) -> Any:
    kinds = _types(node)
    if "boolean" in kinds:
        if raw is None or raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _Bad(Problem(path, f"{arg}={raw} is not a boolean", "use true or false"))
    if raw is None:
        raise _Bad(Problem(path, f"{arg} has no value", f"write {arg}=<value>"))
    if "integer" in kinds:
        try:
            return int(raw, 10)
        except ValueError:
            raise _Bad(Problem(path, f"{arg}={raw} is not a whole number", "write digits only")) from None
    if "array" in kinds:
        item = node.get("items", {})
        if "object" in _types(item):
            raise _Bad(Problem(path, f"{arg} is a list of settings and needs an index",
                               f"write {arg.split('=')[0]}[0].<key>=<value>"))
        return _Indexed({i: _coerce(v.strip(), item, f"{path}[{i}]", arg)
                         for i, v in enumerate(raw.split(",")) if v.strip()})
    if "object" in kinds:
        raise _Bad(Problem(path, f"{arg} is a section, not a value",
                           f"set its keys: {', '.join(sorted(node.get('properties', {})))}"))
    return raw


class _Bad(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _walk(key: str, arg: str) -> tuple[list[str | int], dict[str, Any]]:
    """Resolve ``install.device`` to path parts and the leaf schema, or raise _Bad."""
    node: dict[str, Any] = schema()
    parts: list[str | int] = []
    for segment in key.split("."):
        m = _SEGMENT.match(segment)
        shown = _path(parts)
        if not m:
            raise _Bad(Problem(f"{shown}.{segment}" if shown else segment,
                               f"{arg} is not a valid key", "write hci.<section>.<key>[<index>]=<value>"))
        name, indexes = m.group(1), [int(i) for i in re.findall(r"\d+", m.group(2))]
        props = node.get("properties", {})
        if name not in props:
            path = f"{shown}.{name}" if shown else name
            known = ", ".join(sorted(props))
            raise _Bad(Problem(path, f"unknown key {arg} on the kernel command line", f"known keys here: {known}"))
        node = props[name]
        parts.append(name)
        for index in indexes:
            if "array" not in _types(node):
                raise _Bad(Problem(_path(parts), f"{arg}: not a list, it takes no [index]",
                                   f"write hci.{_path(parts)}=<value>"))
            node = node.get("items", {})
            parts.append(index)
    return parts, node


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _assign(tree: dict[Any, Any], parts: list[str | int], value: Any) -> None:
    node = tree
    for here, nxt in zip(parts, parts[1:]):
        child = node.get(here)
        if not isinstance(child, dict):
            child = _Indexed() if isinstance(nxt, int) else {}
            node[here] = child
        node = child
    node[parts[-1]] = value


def _finish(node: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(node, _Indexed):
        indexes = sorted(node)
        if indexes != list(range(len(indexes))):
            missing = next(i for i in range(len(indexes) + 1) if i not in node)
            problems.append(Problem(f"{path}[{missing}]", "is missing: list indexes must count up from 0",
                                    f"give {path}[{missing}] or renumber"))
        return [_finish(node[i], f"{path}[{i}]", problems) for i in indexes]
    if isinstance(node, dict):
        return {k: _finish(v, f"{path}.{k}" if path else k, problems) for k, v in node.items()}
    return node


def parse_cmdline(cmdline: str) -> dict[str, Any]:
    """The nested config dict given by the ``hci.*`` arguments of a kernel command line.

    Raises ValidationError listing every unknown key, bad value or bad quoting."""
    problems: list[Problem] = []
    try:
        args = split_args(cmdline)
    except ValueError as exc:
        raise ValidationError([Problem("kernel command line", str(exc), "close the double quote")]) from exc
    tree: dict[str, Any] = {}
    for arg in args:
        if not arg.startswith(PREFIX):
            continue
        key, sep, raw = arg[len(PREFIX):].partition("=")
        try:
            parts, leaf = _walk(key, arg.split("=")[0])
            _assign(tree, parts, _coerce(raw if sep else None, leaf, _path(parts), arg.split("=")[0]))
        except _Bad as bad:
            problems.append(bad.problem)
    result = _finish(tree, "", problems)
    if problems:
        raise ValidationError(problems)
    return result


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces.

    Neither argument is changed. Use it as ``merge(fetched_file, parse_cmdline(cmdline))``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
