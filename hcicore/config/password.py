"""Hashing the root password: sha512-crypt made by ``openssl passwd -6``.

The password goes to openssl on stdin, never in argv, so neither the process table nor the
command log (:mod:`hcicore.command`) sees it.
"""
from __future__ import annotations

from hcicore.command import run
from hcicore.errors import HciError


def hash_password(plain: str) -> str:
    """Return a ``$6$`` crypt hash of ``plain`` with a random salt."""
    if not plain or any(c in plain for c in "\r\n\0"):
        raise ValueError("password must be one non-empty line")
    result = run(["openssl", "passwd", "-6", "-stdin"], stdin=plain + "\n", timeout=30)
    hashed = result.stdout.strip()
    if not hashed.startswith("$6$"):
        raise HciError(f"openssl passwd -6 gave an unexpected answer ({len(hashed)} characters)")
    return hashed


def verify_password(plain: str, hashed: str) -> bool:
    """True when ``hashed`` (a ``$6$`` hash) is the hash of ``plain``."""
    parts = hashed.split("$")
    if len(parts) < 4 or parts[1] != "6":
        raise ValueError("only $6$ hashes can be verified here")
    salt_parts = parts[2:-1]  # salt, or rounds=N and salt
    salt = salt_parts[-1]
    argv = ["openssl", "passwd", "-6", "-salt", salt, "-stdin"]
    if len(salt_parts) == 2:
        raise ValueError("hashes with rounds= cannot be verified with openssl passwd")
    return run(argv, stdin=plain + "\n", timeout=30).stdout.strip() == hashed
