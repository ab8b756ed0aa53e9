"""A switch's access port for a lab VM, in a network namespace the test creates.

The VM's management NICs sit on a qemu hub whose uplink is a UDP socket on 127.0.0.1 (one
datagram per Ethernet frame). This process is the other end: it tags and untags like a switch
port in access mode for one VLAN (the host kernel has no 802.1Q module, so it is done here: a
frame without that tag is dropped) and hands the frames to a tap device inside the namespace,
where the "upstream" address lives. A TCP listener on the host's 127.0.0.1 forwards each
connection to an address behind the port (the node's SSH), so a test reaches the node only over
that VLAN.

Run as root: ``python3 -m tests.vm.switchport --netns NS --vlan 100 --address 192.168.100.1/24
--udp LOCAL:REMOTE --forward PORT:192.168.100.10:22``. It prints ``READY`` once it serves.
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys
import threading

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
TPID = b"\x81\x00"
TAP = "hciport0"


def enter_netns(name: str) -> None:
    """Move this thread (and the threads and processes it starts) into the named namespace;
    sockets made before stay in the host's."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def untag(frame: bytes, vlan: int) -> bytes | None:
    """The frame without its 802.1Q tag when it carries ``vlan``; None for anything else."""
    if len(frame) < 18 or frame[12:14] != TPID:
        return None
    if struct.unpack("!H", frame[14:16])[0] & 0x0FFF != vlan:
        return None
    return frame[:12] + frame[16:]


def tag(frame: bytes, vlan: int) -> bytes:
    return frame[:12] + TPID + struct.pack("!H", vlan) + frame[12:]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:  # the other direction's pump then sees its socket closed and ends too
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already shut down by the other direction
            s.close()


def _forward(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def serve(args: argparse.Namespace) -> None:
    local, remote = (int(p) for p in args.udp.split(":"))
    listen_port, target_host, target_port = args.forward.split(":")
    uplink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uplink.bind(("127.0.0.1", local))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(listen_port)))
    listener.listen(8)
    enter_netns(args.netns)  # before any thread: they inherit the namespace
    tap = open_tap(TAP)
    for argv in (["ip", "link", "set", "lo", "up"], ["ip", "address", "add", args.address, "dev", TAP],
                 ["ip", "link", "set", TAP, "up"]):
        subprocess.run(argv, check=True)
    threading.Thread(target=_forward, args=(listener, (target_host, int(target_port))), daemon=True).start()
    print("READY", flush=True)
    qemu = ("127.0.0.1", remote)
    while True:
        ready, _, _ = select.select([uplink, tap], [], [])
        if uplink in ready:
            frame = untag(uplink.recv(65536), args.vlan)
            if frame is not None:
                os.write(tap, frame)
        if tap in ready:
            uplink.sendto(tag(os.read(tap, 65536), args.vlan), qemu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("--vlan", type=int, required=True)
    parser.add_argument("--address", required=True, help="CIDR address of the tap in the namespace")
    parser.add_argument("--udp", required=True, help="LOCAL:REMOTE ports on 127.0.0.1 (REMOTE is qemu's)")
    parser.add_argument("--forward", required=True, help="PORT:HOST:PORT, from the host's 127.0.0.1")
    serve(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
