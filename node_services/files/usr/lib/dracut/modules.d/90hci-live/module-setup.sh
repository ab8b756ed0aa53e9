#!/bin/bash
# hcios live-boot fixes for dracut 059 (Debian bookworm). Included only on request:
#   dracut --add "dmsquash-live hci-live"
# It pulls in livenet so the same initramfs also boots root=live:http://... (PXE), with the
# network-legacy backend (dhclient): dracut 059's systemd-networkd backend brings the link up
# but never runs the initqueue/online hooks, so livenet never fetches the image.
# Needs in the image: isc-dhcp-client, iputils-arping, curl, dracut-network, dracut-live.

check() {
    # 255: never picked automatically, only with --add hci-live
    return 255
}

depends() {
    # network-legacy first: the network module then picks it as its handler.
    echo dmsquash-live network-legacy livenet
}

install() {
    # dracutdevs/dracut#1820: with a systemd initrd the overlay root mount fails with
    # "overlayfs: failed to resolve '/run/overlayfs'"; create the dirs before sysroot.mount.
    inst_hook pre-mount 10 "$moddir/hci-live-overlay-dirs.sh"
}
