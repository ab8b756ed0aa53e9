#!/bin/bash
# hcios installed-node root (hci.slot= on the kernel command line): after dracut mounted the
# slot's squashfs read-only on /sysroot (root=PARTUUID=<slot> rootfstype=squashfs ro), mount
# hci-oem and hci-persistent (hci.oem=, hci.persistent=: PARTUUIDs of the same disk) under
# /run/hci and lay the writable parts over the slot: /etc as overlayfs (this slot's upper on
# hci-persistent), /var, /root, /home bind-mounted from hci-persistent, /tmp a tmpfs.
# Included only on request: dracut --add hci-root.

check() {
    return 255
}

depends() {
    echo rootfs-block
}

installkernel() {
    instmods ext4 overlay squashfs
}

install() {
    inst_multiple mount umount mkdir cp touch mv tr wc tail readlink blkid sync reboot sleep
    inst_multiple -o e2fsck fsck.ext4
    inst_hook pre-pivot 50 "$moddir/hci-root-mount.sh"
    inst_hook shutdown-emergency 10 "$moddir/hci-trial-reboot.sh"
}
