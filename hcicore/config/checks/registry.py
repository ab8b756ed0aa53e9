"""The registry of semantic config checks: each is a small named function.

A check takes the model and returns its problems (empty when fine). ``CHECKS`` lists them by
name in registration order; :func:`run_checks` runs all of them and returns every problem.
"""
from __future__ import annotations

from collections.abc import Callable

from hcicore.errors import Problem

from ..model import NodeConfig

Check = Callable[[NodeConfig], list[Problem]]
CHECKS: dict[str, Check] = {}

def check(name: str) -> Callable[[Check], Check]:
    """Register a semantic check under ``name``."""
    def reg(fn: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"duplicate config check {name}")
        CHECKS[name] = fn
        return fn
    return reg


def run_checks(cfg: NodeConfig) -> list[Problem]:
    problems: list[Problem] = []
    for fn in CHECKS.values():
        problems.extend(fn(cfg))
    return problems
