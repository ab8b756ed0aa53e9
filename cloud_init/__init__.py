"""cloud-init NoCloud seed of a node, rendered from its node config (hcicore.config)."""
from .k3s import k3s_config, k3s_service
from .network import network_config
from .seed import SEED_FILES, instance_id, meta_data, render_seed, user_data, write_seed

__all__ = ["SEED_FILES", "instance_id", "k3s_config", "k3s_service", "meta_data", "network_config",
           "render_seed", "user_data", "write_seed"]
