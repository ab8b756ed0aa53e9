"""The storage agent: volumes, snapshots and clones on the node's data disk
(``install.data_device``), served over NVMe-oF TCP to the hosts on each export's allow-list.

* :mod:`.model`   names, sizes and NQNs, checked before anything reaches an engine
* :mod:`.backend` the interface both engines implement, and its errors
* :mod:`.spdk`    SPDK (``nvmf_tgt``) through its JSON-RPC: AIO bdev -> lvstore -> thin lvols
* :mod:`.state`   what SPDK keeps only in memory (the exports), on /var, restored at start
* :mod:`.api`     the local API: JSON over a unix socket (``/run/hcios/storage.sock``)
* :mod:`.agent`   ``hci-storage-agent``: claim the disk, restore the exports, serve the API
* :mod:`.cli`     ``hci storage volume|snapshot|export ...`` (``--json``)
"""
