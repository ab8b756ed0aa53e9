#!/bin/sh
# pre-pivot hook (hcios, dracut module hci-root): writable layers of an installed node.
# Sourced by dracut: no exit, failures call die (emergency shell; on a trial boot
# rd.emergency=reboot, and grub's A/B fallback decides what boots next).
#
# Every partition comes from the kernel line by PARTUUID (hci.oem=, hci.persistent=, and root=
# for the slot), which the installer chose for this disk: never a same-named partition of
# another disk. /etc is an overlay whose upper layer belongs to the booted slot
# ($P/etc/<slot>/upper; hci-upgrade merges it for the other slot before a trial). /var and /root
# get what the image brings and they lack, once per image, and nothing is ever removed.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

hci_wait_dev() {
    _i=0
    while [ ! -b "$1" ] && [ "$_i" -lt 60 ]; do
        sleep 0.5
        _i=$((_i + 1))
    done
    [ -b "$1" ]
}

hci_dev() {
    # $1: the kernel-line value (PARTUUID=<uuid>), $2: the GPT name (kernel lines of installs
    # made before PARTUUIDs name none: then the name is all there is)
    case "$1" in
        PARTUUID=*)
            _u=$(echo "${1#PARTUUID=}" | tr 'A-F' 'a-f')
            _n=$(blkid -o device -t "PARTUUID=$_u" 2>/dev/null | wc -l)
            [ "$_n" -le 1 ] || warn "hcios: $_n partitions carry PARTUUID $_u ($2): a cloned disk? using the first udev found"
            echo "/dev/disk/by-partuuid/$_u"
            ;;
        "")
            warn "hcios: no PARTUUID for $2 on the kernel line; falling back to its GPT name"
            echo "/dev/disk/by-partlabel/$2"
            ;;
        *) die "hcios: $2 is given as '$1' on the kernel line; expected PARTUUID=<uuid>" ;;
    esac
}

hci_mount_part() {
    # $1 kernel-line value, $2 partition label, $3 mount point
    _dev=$(hci_dev "$1" "$2")
    hci_wait_dev "$_dev" || die "hcios: partition $2 not found ($_dev)"
    mkdir -p "$3"
    if command -v e2fsck >/dev/null 2>&1; then
        e2fsck -p "$_dev" >/tmp/hci-fsck.log 2>&1
        _rc=$?
        [ "$_rc" -le 1 ] || warn "hcios: e2fsck exit $_rc on $2 (mounting anyway): $(tail -n 3 /tmp/hci-fsck.log)"
    fi
    mount -t ext4 -o rw,noatime "$_dev" "$3" || die "hcios: cannot mount $2 ($_dev) on $3"
    info "hcios: $2 is $(readlink -f "$_dev") on $3"
}

hci_image_id() {
    ( . /sysroot/usr/lib/os-release 2>/dev/null; echo "${VERSION_ID:-unknown}-${BUILD_ID:-unknown}" )
}

hci_seed() {
    # $1: var or root. Copy in what this image has and hci-persistent lacks; an existing path
    # is never replaced and nothing is deleted. Done once per image (a marker per image id);
    # an interrupted copy has no marker and is simply done again on the next boot.
    _mark="$P/.hci-seeded/$1-$(hci_image_id)"
    [ -e "$_mark" ] && return 0
    mkdir -p "$P/$1" "$P/.hci-seeded"
    if cp -a -n "/sysroot/$1/." "$P/$1/" >/tmp/hci-seed.log 2>&1; then
        sync
        touch "$_mark" || warn "hcios: cannot write $_mark; /$1 will be checked again next boot"
        info "hcios: /$1 has what image $(hci_image_id) brings (missing paths added, nothing replaced)"
    else
        warn "hcios: adding image content to /$1 was incomplete (nothing replaced): $(tail -n 3 /tmp/hci-seed.log)"
    fi
}

hci_etc_upper() {
    # this slot's /etc upper layer; an install from before per-slot layers has one shared one,
    # moved into place through $E.migrating so that a cut half way is finished next boot
    E="$P/etc/$hci_slot"
    if [ ! -d "$E" ] && [ -d "$E.migrating" ]; then
        mv "$E.migrating" "$E" || die "hcios: cannot finish moving the /etc layer to $E"
    fi
    if [ ! -d "$E" ] && [ -d "$P/etc/upper" ]; then
        mkdir -p "$E.migrating" && mv "$P/etc/upper" "$E.migrating/upper" \
            || die "hcios: cannot move the /etc layer to $E"
        if [ -d "$P/etc/work" ]; then
            mv "$P/etc/work" "$E.migrating/work" || die "hcios: cannot move the /etc work dir to $E"
        fi
        sync
        mv "$E.migrating" "$E" || die "hcios: cannot move the /etc layer to $E"
    fi
    mkdir -p "$E/upper" "$E/work" || die "hcios: cannot make the /etc layer $E"
}

hci_nocloud_seed() {
    # cloud-init's NoCloud reads network-config only from a seed directory, not from the
    # ds=nocloud;s=file://... seed on the kernel line (22.4 reads user-data and meta-data there):
    # /var/lib/cloud/seed/nocloud points at hci-oem's seed, so the node's network config applies
    _seed=/run/hci/oem/hcios/nocloud
    _link=/sysroot/var/lib/cloud/seed/nocloud
    [ -d "$_seed" ] || return 0
    [ "$(readlink "$_link" 2>/dev/null)" = "$_seed" ] && return 0
    if [ -e "$_link" ] && [ ! -L "$_link" ]; then
        warn "hcios: $_link is not hcios's link to $_seed; the node's network-config may not apply"
        return 0
    fi
    mkdir -p "${_link%/*}" && ln -sfn "$_seed" "$_link" \
        || warn "hcios: cannot link $_link to $_seed; the node's network-config will not apply"
}

hci_root_setup() {
    P=/run/hci/persistent
    hci_mount_part "$(getarg hci.oem=)" hci-oem /run/hci/oem
    hci_mount_part "$(getarg hci.persistent=)" hci-persistent "$P"
    hci_etc_upper
    mkdir -p "$P/home"
    hci_seed var
    hci_seed root
    mount -t overlay overlay -o "lowerdir=/sysroot/etc,upperdir=$E/upper,workdir=$E/work" /sysroot/etc \
        || die "hcios: cannot mount the /etc overlay"
    for d in var root home; do
        mount --bind "$P/$d" "/sysroot/$d" || die "hcios: cannot bind /$d from hci-persistent"
    done
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /sysroot/tmp || die "hcios: cannot mount /tmp"
    hci_nocloud_seed
    _trial=""
    getargbool 0 hci.trial && _trial=" (trial boot)"
    info "hcios: slot $hci_slot root ready$_trial: /etc overlay, /var /root /home on hci-persistent"
}

hci_slot=$(getarg hci.slot=)
case "$hci_slot" in
    a|b) hci_root_setup ;;
    "") ;;
    *) die "hcios: hci.slot=$hci_slot on the kernel line; expected a or b" ;;
esac
