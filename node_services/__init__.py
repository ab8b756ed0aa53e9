"""The node's own services: everything that runs on an installed hcios node.

One module per service, their systemd units and dracut modules under ``files/`` (copied into
the image verbatim) and ``enable.list`` (units enabled in the image):

* :mod:`node_services.bootdisk`  which disk and partitions this node booted from (PARTUUIDs)
* :mod:`node_services.record`    what each slot holds and what happened (two checksummed copies)
* :mod:`node_services.health`    ``hci-health``: the health gate that marks a trial slot good
* :mod:`node_services.upgrade`   ``hci-upgrade``: apply, status, rollback, mark-good
* :mod:`node_services.cluster`   ``hci upgrade-cluster``: node by node over SSH
* :mod:`node_services.plan`      ``hci upgrade-plan``: the same through system-upgrade-controller
* :mod:`node_services.vip`       ``hci-vip``: keepalived's config for the cluster VIP (servers)
"""
