#!/bin/sh
# Pre-mount hook (hcios): dmsquash-live mounted the squashfs at /run/rootfsbase but, with a
# systemd initrd in dracut 059, nothing creates the overlay's upper and work directories
# (dracutdevs/dracut#1820). Create them so sysroot.mount (lowerdir=/run/rootfsbase,
# upperdir=/run/overlayfs, workdir=/run/ovlwork) succeeds.
if [ -e /run/rootfsbase ]; then
    mkdir -m 0755 -p /run/overlayfs /run/ovlwork
fi
