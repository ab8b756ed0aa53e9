"""Shared primitives of hcios: command runner, errors, progress, the node config model and disk layout."""

__version__ = "0.1.0"
