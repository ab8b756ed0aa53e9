"""Kernel command-line arguments a node config asks for (the installer puts them on both slots'
entries in grub.cfg).

DPDK (``node.network.dpdk``): 2 MiB hugepages reserved at boot, when memory is not yet
fragmented (``hugepages=N``; reserving them later may find too few free), and the IOMMU on in
passthrough mode (``intel_iommu=on``: Intel's is off by default, AMD's is on; ``iommu=pt``: only
devices given to vfio-pci are translated, the rest keep their full DMA speed).
"""
from __future__ import annotations

from .model import NodeConfig

HUGEPAGE = "2M"


def node_kernel_args(cfg: NodeConfig) -> str:
    dpdk = cfg.node.network.dpdk
    if dpdk is None:
        return ""
    return " ".join([f"default_hugepagesz={HUGEPAGE}", f"hugepagesz={HUGEPAGE}", f"hugepages={dpdk.hugepages}",
                     "intel_iommu=on", "iommu=pt"])
