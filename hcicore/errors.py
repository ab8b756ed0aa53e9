"""Project error types. Exit codes follow the CLI contract: 2 bad input, 1 failure."""
from __future__ import annotations

from dataclasses import dataclass


class HciError(Exception):
    """Base of every error hcios raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem with user input: where, what, and how to fix it."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f" ({self.fix})" if self.fix else ""
        return f"error: {self.path}: {self.message}{fix}"


class ValidationError(HciError):
    """Bad input: carries every problem found, one line each."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CommandError(HciError):
    """A system command failed; carries argv, exit status and stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-15:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"command failed ({returncode}): {' '.join(argv)}{detail}")


class FetchError(HciError):
    """Something could not be downloaded (network, HTTP status, time budget spent): a build
    artifact, a config URL, SSH keys from a URL."""


class DigestMismatch(HciError):
    """Downloaded or written bytes do not have the expected sha256."""

    exit_code = 2
