#!/bin/bash
# Build SPDK's NVMe-oF target (nvmf_tgt, spdk_tgt) and its userspace NVMe initiator examples
# (identify, perf, hello_world, spdk_dd) from a verified source tarball against Debian bookworm's
# DPDK 22.11, linked statically (SPDK and DPDK): the binaries need only the system libraries
# listed in RUNTIME-DEBS. Run by image/spdk.py, which caches OUT by the tarball's sha256, this
# script's digest, the DPDK version and the target arch.
# Usage: spdk.sh SRC_TARBALL WORKDIR OUT TARGET_ARCH
set -euo pipefail
SRC=$1 WORK=$2 OUT=$3 ARCH=$4
mkdir -p "$WORK" && cd "$WORK"
tar -xJf "$SRC"
cd spdk-*/

# 23.01 accepts DPDK 22.11.0-22.11.1 only; bookworm ships 22.11.x (an LTS: the ABI is kept)
sed -i 's/^\t\tif (minor > 1) {$/\t\tif (minor > 99) {/' lib/env_dpdk/pci_dpdk.c
grep -q 'if (minor > 99) {' lib/env_dpdk/pci_dpdk.c
# the example initiators take their DPDK options from SPDK_ENV_CONTEXT / SPDK_IOVA_MODE (so they
# start without hugepages: "--no-huge --legacy-mem", "va"); the apps set both from their own
# --env-context / --iova-mode options and are not affected
sed -i 's/^\topts->base_virtaddr = SPDK_ENV_DPDK_DEFAULT_BASE_VIRTADDR;$/&\n\topts->env_context = getenv("SPDK_ENV_CONTEXT");\n\topts->iova_mode = getenv("SPDK_IOVA_MODE");/' lib/env_dpdk/init.c
grep -q 'getenv("SPDK_ENV_CONTEXT")' lib/env_dpdk/init.c
# the isa-l submodules are empty in the tarball: an empty autogen.sh makes configure drop ISA-L
touch isa-l/autogen.sh

./configure --with-dpdk --target-arch="$ARCH" \
  --without-crypto --without-vhost --without-virtio --without-vfio-user --without-fuse \
  --without-ocf --without-xnvme --without-idxd --without-rdma --without-uring --without-usdt \
  --without-iscsi-initiator --disable-tests --disable-unit-tests --disable-examples
# Debian's DPDK has IPSec_MB (its submodule is empty here); configure forces shared libraries
# with a packaged DPDK, but libdpdk-dev ships the static archives: link everything statically
sed -i -e 's/^CONFIG_IPSEC_MB?=y/CONFIG_IPSEC_MB?=n/' -e 's/^CONFIG_ISAL_CRYPTO?=y/CONFIG_ISAL_CRYPTO?=n/' \
       -e 's/^CONFIG_ISAL?=y/CONFIG_ISAL?=n/' -e 's/^CONFIG_SHARED?=y/CONFIG_SHARED?=n/' mk/config.mk
MK=(DPDK_PRIVATE_LINKER_ARGS="-lnuma -ldl -lbsd -lfdt")
# no build path in the binaries (__FILE__ in headers): the same tarball gives the same bytes
# wherever it is built, so the squashfs stays reproducible (configure put DPDK's pkg-config
# flags in mk/cc.flags.mk as `CFLAGS?=`: append there, an environment CFLAGS would replace them)
echo "CFLAGS += -ffile-prefix-map=$PWD=spdk" >> mk/cc.flags.mk
make -j"$(nproc)" "${MK[@]}"
for e in identify perf hello_world; do make -j"$(nproc)" -C examples/nvme/$e "${MK[@]}"; done

mkdir -p "$OUT/bin"
cp build/bin/nvmf_tgt build/bin/spdk_tgt build/bin/spdk_dd build/examples/identify build/examples/perf \
   build/examples/hello_world "$OUT/bin/"
strip "$OUT"/bin/*
for f in "$OUT"/bin/*; do ldd "$f"; done | awk '/=>/{print $3}' | sort -u | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"
done | cut -d: -f1 | sort -u > "$OUT/RUNTIME-DEBS"
