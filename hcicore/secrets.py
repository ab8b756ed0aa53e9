"""One rule for the values no message may show: passwords, password hashes, tokens, and the
credentials inside URLs.

A schema marks such a field with ``"x-secret": "value"`` (never shown: a placeholder naming its
type takes its place) or ``"x-secret": "url"`` (shown only as :func:`hcicore.redact.redact_url`
gives it: scheme, host, port and path). The rule applies whatever the value's type is: an int,
a list or a map at a secret path is hidden as a whole, every scalar inside it included.

Two places apply it: :mod:`hcicore.schema` never formats a secret field's value into a problem,
and :func:`scrub_problems` takes every secret text found in the input out of every problem's
message and fix (the semantic checks, and anything a later change adds, cannot leak one).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import Problem
from .redact import redact_url

SECRET_KEY = "x-secret"
MIN_SCRUB = 3  # shorter texts are not searched for in messages: they would mangle ordinary words


def shown(value: Any, kind: str | None) -> str:
    """How a value of a field of ``kind`` (None, "value", "url") may appear in a message."""
    if kind is None:
        return repr(value)
    if kind in ("url", "endpoint") and isinstance(value, str):
        return repr(redact_url(value, keep_path=kind == "url"))
    return f"<hidden {type(value).__name__}>"


def holds_secret(schema: Any) -> bool:
    """``schema`` is a secret field or has one anywhere below it."""
    if not isinstance(schema, dict):
        return False
    if schema.get(SECRET_KEY):
        return True
    return any(holds_secret(sub) for sub in (schema.get("properties") or {}).values())


def kind_of(schema: Any) -> str | None:
    """How a value under ``schema`` may be shown: its own x-secret kind, "value" when a secret
    field sits below it (a section written as a string, say), else None."""
    if isinstance(schema, dict) and schema.get(SECRET_KEY):
        return str(schema[SECRET_KEY])
    return "value" if holds_secret(schema) else None


def secret_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Field path (keys) -> kind, for every property of ``schema`` marked ``x-secret``."""
    found: dict[tuple[str, ...], str] = {}
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        path = (*prefix, key)
        if sub.get(SECRET_KEY):
            found[path] = str(sub[SECRET_KEY])
        found.update(secret_paths(sub, path))
    return found


def _leaves(value: Any) -> Iterator[str]:
    """The text of every scalar in ``value`` (keys of maps included), and of ``value`` itself."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _leaves(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _leaves(v)
    if value is not None and not isinstance(value, bool):
        yield str(value)
        yield repr(value)


def _url_parts(url: str) -> Iterator[str]:
    """What of a URL must not be shown: the whole text and the parts redact_url drops."""
    yield url
    rest = url.split("://", 1)[-1]
    userinfo, at, _ = rest.partition("@")
    if at and "/" not in userinfo:
        yield userinfo
        yield from userinfo.split(":", 1)
    for sep in ("?", "#"):
        if sep in url:
            yield url.split(sep, 1)[1]


def secret_texts(data: Any, schema: dict[str, Any]) -> list[str]:
    """Every text in ``data`` (the raw input) that a message must not contain, longest first."""
    texts: set[str] = set()
    for path, kind in secret_paths(schema).items():
        node = data
        for key in path:
            if node is not None and not isinstance(node, dict):  # a section written as a scalar or
                texts.update(_leaves(node))                      # list: it may hold the secret
                node = None
                break
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue
        if kind in ("url", "endpoint") and isinstance(node, str) and redact_url(node) != "<not a URL>":
            texts.update(_url_parts(node))
        else:
            texts.update(_leaves(node))
    return sorted((t for t in texts if len(t) >= MIN_SCRUB), key=len, reverse=True)


def scrub(text: str, texts: list[str]) -> str:
    for secret in texts:
        text = text.replace(secret, "<hidden>")
    return text


def scrub_problems(problems: list[Problem], data: Any, schema: dict[str, Any]) -> list[Problem]:
    """``problems`` with every secret text of ``data`` taken out of their messages and fixes."""
    texts = secret_texts(data, schema)
    if not texts:
        return list(problems)
    return [Problem(p.path, scrub(p.message, texts), scrub(p.fix, texts)) for p in problems]
