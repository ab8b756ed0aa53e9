"""Boot media and the VM lab: the hybrid live/installer ISO (``build``), the PXE directory
(``pxe``), and libvirt/qemu VMs that boot them under TCG (``lab``, CLI ``hci lab``)."""
