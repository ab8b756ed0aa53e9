# hcios developer entry points. `make iso` and `make test` work on a fresh Debian 12 machine:
# they install the apt packages the host lacks and the Python environment first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
HCI := $(VENV)/bin/hci
PYTEST := $(VENV)/bin/pytest
OUT ?= out
PROFILE ?=
export HCIOS_CACHE ?= $(HOME)/.cache/hcios
# sources this machine cannot download (SPDK): ../shared/third_party/README.md
export HCIOS_THIRD_PARTY ?= $(abspath ../shared/third_party)

APT_PACKAGES := mmdebstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin grub-common \
  grub2-common mtools dosfstools gdisk fdisk qemu-system-x86 qemu-utils ovmf libvirt-daemon \
  libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config skopeo docker-registry \
  e2fsprogs tmux uidmap arch-test cpio xz-utils zstd util-linux python3-venv python3-dev gcc \
  openssh-client pigz cloud-init \
  libdpdk-dev libisal-dev libaio-dev uuid-dev libnuma-dev libssl-dev libjson-c-dev libncurses-dev \
  libcunit1-dev libfdt-dev libbsd-dev make

.PHONY: help host-deps venv iso test test-unit test-build test-vm bench clean
help:
	@echo "make iso        build the default ISO into $(OUT)/ (installs what the host lacks)"
	@echo "make test       run the whole suite: unit, build and VM tiers"
	@echo "make test-unit | test-build | test-vm   one tier"
	@echo "make bench      run bench/*.py"

host-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.stamp: pyproject.toml | host-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: host-deps $(VENV)/.stamp

iso: venv
	$(HCI) build $(PROFILE) --out $(OUT) --allow-missing-components

test: venv
	$(PYTEST) -v --durations=25 tests

test-unit: venv
	$(PYTEST) -v -m unit tests

test-build: venv
	$(PYTEST) -v -m build tests

test-vm: venv
	$(PYTEST) -v -m vm tests

bench: venv
	$(VENV)/bin/python bench/build.py

clean:
	rm -rf $(OUT) $(VENV) .pytest_cache
