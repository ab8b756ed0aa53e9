#!/bin/sh
# pre-pivot hook (hcios, dracut module hci-root): writable layers of an installed node.
# Sourced by dracut: no exit, failures call die (emergency shell; on a trial boot
# rd.emergency=reboot, and grub's A/B fallback decides what boots next).
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

hci_wait_dev() {
    _i=0
    while [ ! -b "$1" ] && [ "$_i" -lt 60 ]; do
        sleep 0.5
        _i=$((_i + 1))
    done
    [ -b "$1" ]
}

hci_mount_part() {
    # $1 partition label, $2 mount point
    _dev="/dev/disk/by-partlabel/$1"
    hci_wait_dev "$_dev" || die "hcios: partition $1 not found ($_dev)"
    mkdir -p "$2"
    if command -v e2fsck >/dev/null 2>&1; then
        e2fsck -p "$_dev" >/tmp/hci-fsck.log 2>&1
        _rc=$?
        [ "$_rc" -le 1 ] || warn "hcios: e2fsck exit $_rc on $1 (mounting anyway): $(tail -n 3 /tmp/hci-fsck.log)"
    fi
    mount -t ext4 -o rw,noatime "$_dev" "$2" || die "hcios: cannot mount $1 on $2"
}

hci_root_setup() {
    P=/run/hci/persistent
    hci_mount_part hci-oem /run/hci/oem
    hci_mount_part hci-persistent "$P"
    mkdir -p "$P/etc/upper" "$P/etc/work" "$P/home"
    # First boot: /var and /root start as the image's copies; later boots keep their own.
    for d in var root; do
        if [ ! -e "$P/.hci-seeded-$d" ]; then
            rm -rf "${P:?}/$d"
            mkdir -p "$P/$d"
            cp -a "/sysroot/$d/." "$P/$d/" || die "hcios: cannot seed /$d on hci-persistent"
            # the marker only after the copy is on disk; without it the next boot seeds again
            # (and removes what this boot put there), so a marker that can't be written stops here
            sync
            touch "$P/.hci-seeded-$d" || die "hcios: cannot mark /$d as seeded on hci-persistent"
        fi
    done
    mount -t overlay overlay \
        -o "lowerdir=/sysroot/etc,upperdir=$P/etc/upper,workdir=$P/etc/work" /sysroot/etc \
        || die "hcios: cannot mount the /etc overlay"
    for d in var root home; do
        mount --bind "$P/$d" "/sysroot/$d" || die "hcios: cannot bind /$d from hci-persistent"
    done
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /sysroot/tmp || die "hcios: cannot mount /tmp"
    info "hcios: slot $hci_slot root ready (/etc overlay, /var /root /home on hci-persistent)"
}

hci_slot=$(getarg hci.slot=)
if [ -n "$hci_slot" ]; then
    hci_root_setup
fi
