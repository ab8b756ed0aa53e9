#!/bin/sh
# shutdown-emergency hook (hcios, dracut module hci-root). dracut's die() and its emergency
# service (with rd.shell=0, which a trial boot has) run these hooks and would then halt. On a
# trial boot a failed initramfs must reboot instead: grub has already counted the try, and at
# zero tries it boots the good slot.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh
if getargbool 0 hci.trial; then
    warn "hcios: the initramfs of this trial boot failed: rebooting (grub falls back to the good slot when the tries are used up)"
    sleep 3
    reboot -f || echo b >/proc/sysrq-trigger
fi
