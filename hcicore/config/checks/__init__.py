"""Semantic checks of a node config, run after the schema, one module per concern.

``CHECKS`` maps each check's name to the function, in registration order (node, install, cluster,
network, upgrade); :func:`run_checks` runs all of them and returns every problem.
"""
# Registration order is the order problems are reported in: node first, as the file reads.
from . import node  # noqa: F401,I001  (each import registers its checks)
from . import install  # noqa: F401
from . import cluster  # noqa: F401
from . import network  # noqa: F401
from . import upgrade  # noqa: F401
from .registry import CHECKS, Check, check, run_checks

__all__ = ["CHECKS", "Check", "check", "run_checks"]
