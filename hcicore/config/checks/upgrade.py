"""Semantic checks of the ``upgrade`` section ."""
from __future__ import annotations

import re

from hcicore.errors import HciError, Problem

from ..model import NodeConfig
from .registry import check

REGISTRY_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


@check("upgrade-trusted-keys")
def trusted_keys_p256(cfg: NodeConfig) -> list[Problem]:
    from hcicore.cosign import load_public_key  # noqa: PLC0415  (cryptography only when keys are set)

    problems = []
    for i, pem in enumerate(cfg.upgrade.trusted_keys):
        try:
            load_public_key(pem, where=f"upgrade.trusted_keys[{i}]")
        except HciError:
            problems.append(Problem(f"upgrade.trusted_keys[{i}]", "is not a PEM ECDSA P-256 public key",
                                    "paste the whole cosign.pub, from -----BEGIN PUBLIC KEY----- to the END line"))
    return problems


@check("upgrade-insecure-registries")
def insecure_registries_hosts(cfg: NodeConfig) -> list[Problem]:
    return [Problem(f"upgrade.insecure_registries[{i}]", f"{host!r} is not HOST or HOST:PORT",
                    "name the registry as in the reference, e.g. 10.0.0.5:5000")
            for i, host in enumerate(cfg.upgrade.insecure_registries) if not REGISTRY_HOST.match(host)]


@check("upgrade-deadline")
def deadline_after_health(cfg: NodeConfig) -> list[Problem]:
    up = cfg.upgrade
    if up.trial_deadline <= up.health_timeout:
        return [Problem("upgrade.trial_deadline", f"{up.trial_deadline}s is not longer than health_timeout "
                        f"({up.health_timeout}s): a healthy trial would be rebooted before its checks end",
                        "make trial_deadline longer than health_timeout")]
    return []
