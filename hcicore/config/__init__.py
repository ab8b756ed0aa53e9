"""The node config: one model for the installer (TUI, PXE, config file), cloud_init and node services.

Public API::

    load_config(data, *, source) -> NodeConfig        # schema, then semantic checks; ValidationError
    load_config_file(path) -> NodeConfig
    dump_config(cfg) -> str                            # YAML; never the plain password
    config_dict(cfg) -> dict                           # the same, as data
    parse_cmdline(cmdline) -> dict                     # hci.<path>=value arguments
    merge(base, override) -> dict                      # cmdline over a fetched file
    schema() -> dict                                   # the JSON Schema
    hash_password(plain) -> str                        # $6$ sha512-crypt via openssl, stdin only
    CHECKS                                             # name -> semantic check
"""
from hcicore.yamlio import load_yaml_text as parse_yaml  # the one YAML reader


from .checks import CHECKS, run_checks
from .cmdline import merge, parse_cmdline
from .io import config_dict, dump_config, load_config, load_config_file, schema
from .model import (
    SCHEMA_VERSION,
    Bond,
    Cluster,
    Dpdk,
    Install,
    Interface,
    Network,
    Node,
    NodeConfig,
    Proxy,
    Upgrade,
    Webhooks,
    from_dict,
    to_dict,
)
from .password import hash_password, verify_password

__all__ = [
    "CHECKS", "SCHEMA_VERSION", "Bond", "Cluster", "Dpdk", "Install", "Interface", "Network", "Node",
    "NodeConfig", "Proxy", "Upgrade", "Webhooks", "config_dict", "dump_config", "from_dict", "hash_password",
    "load_config", "load_config_file", "merge", "parse_cmdline", "parse_yaml", "run_checks", "schema",
    "to_dict", "verify_password",
]
