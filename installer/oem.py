"""What the installer leaves on ``hci-oem``: node config, NoCloud seed, build info, install log.

Paths inside the filesystem come from :mod:`hcicore.layout` (``OEM_NODE_CONFIG``,
``OEM_SEED_DIR``). The config and the seed hold the password hash and the cluster token: their
files are 0600 and their directory 0700. The install log holds no secrets (commands are logged
with secrets masked, the config never).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cloud_init.seed import write_seed
from hcicore.config import NodeConfig, dump_config
from hcicore.files import write_private
from hcicore.layout import OEM_DIR, OEM_INSTALL_INFO, OEM_NODE_CONFIG, OEM_SEED_DIR

INSTALL_LOG = f"{OEM_DIR}/install.log"
INSTALL_INFO = OEM_INSTALL_INFO


def _private_dir(path: Path) -> None:
    """``hcios/`` on hci-oem holds the node config and seed (hashes, tokens): owner only, even
    when an earlier step made it with another mode."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, text: str) -> None:
    _private_dir(path.parent)
    write_private(path, text)


def write_node_config(oem_root: Path, cfg: NodeConfig) -> list[Path]:
    """The validated node config (0600) and the cloud-init NoCloud seed."""
    config_path = oem_root / OEM_NODE_CONFIG
    _write_private(config_path, dump_config(cfg))
    seed = write_seed(cfg, oem_root / OEM_SEED_DIR)
    return [config_path, *seed]


def write_install_info(oem_root: Path, info: dict[str, object]) -> Path:
    """Version and digest of what went into slot A, for `hci-upgrade status`."""
    path = oem_root / INSTALL_INFO
    _private_dir(path.parent)
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def keep_log(oem_root: Path, log_file: Path) -> Path:
    """Copy the install log (so far) onto hci-oem."""
    target = oem_root / INSTALL_LOG
    _private_dir(target.parent)
    shutil.copyfile(log_file, target)
    target.chmod(0o600)
    with target.open("rb") as f:
        os.fsync(f.fileno())
    return target
