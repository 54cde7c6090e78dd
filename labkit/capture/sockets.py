"""Packet sockets at capture points: one AF_PACKET socket per point, opened inside the point's
namespace, with its filter, receive buffer, timestamps and the kernel's counters.

scapy cannot follow a setns after import (scapy#3467), so labkit does not sniff with scapy:
the capture's reader thread calls `open_socket` for each point, which enters the namespace
(`netns.entered`), opens the socket there and switches back. Each socket gets a 64 MiB
receive buffer (SO_RCVBUFFORCE; scapy's AsyncSniffer defaults lose 95% of a 20,000-frame
burst on a veth), the BPF filter (labkit.capture.pcap.compile_filter), kernel timestamps
(SO_TIMESTAMPNS) and promiscuous mode (a bridge then also passes up the frames it forwards
between ports, as under tcpdump). Frames are kept as bytes.

Where SO_RCVBUFFORCE is refused (a normal user's world has no CAP_NET_ADMIN in the machine's
initial namespace, and net.core.rmem_max caps SO_RCVBUF: 4 MiB here), the socket gets a
TPACKET_V3 receive ring of the same size instead (labkit.capture.ring), which no limit caps.
LABKIT_CAPTURE_RING=1 (or 0) asks for the ring (or the buffer) whatever the privileges.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import time

from ..errors import KernelError, UnknownName
from ..kernel import netns
from .packets import Packet, PointStats
from .points import Point
from .ring import Ring

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
SIOCGIFINDEX = 0x8933
SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 3
PACKET_OUTGOING = 4
PKTTYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}
UPPER_DRIVERS = {"bridge", "bonding", "802.1Q VLAN Support", "team"}
GONE = (errno.ENETDOWN, errno.ENODEV, errno.ENXIO)
DEFAULT_BUFFER = 64 << 20


class InterfaceGone(Exception):
    """The point's interface went away (deleted, or its namespace deleted)."""


class PointSocket:
    """One point's open packet socket and its running counts (used by the reader thread)."""

    def __init__(self, point: Point, sock: socket.socket, upper: bool, ring: Ring | None = None):
        self.point, self.sock, self.upper, self.ring = point, sock, upper, ring
        self.packets: list[Packet] = []
        self.seen = self.dropped = 0
        self.closed = self.gone = False

    def stats(self) -> PointStats:
        """The point's counts so far (call `read_counters` first for the kernel's latest)."""
        return PointStats(self.point.label, len(self.packets), self.seen, self.dropped, self.gone)

    def read_counters(self) -> None:
        """Add the kernel's PACKET_STATISTICS to `seen` and `dropped` (reading them resets them
        in the kernel, so call it under the capture's lock)."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.seen += packets
            self.dropped += drops

    def unhook(self) -> None:
        """Stop the kernel queueing frames for this socket (bind to protocol 0); what it
        queued already can still be read."""
        with contextlib.suppress(OSError):
            self.sock.bind((self.point.iface, 0))
        if self.ring is not None:
            self.ring.settle()  # the block being filled is handed over, so it can be read

    def close(self) -> None:
        """Close the socket (the kernel then leaves promiscuous mode); counts stay."""
        self.closed = True
        if self.ring is not None:
            self.ring.close()
        self.sock.close()

    def receive(self, view: memoryview, snaplen: int, seq: int) -> Packet | None:
        """The next queued frame as a Packet (numbered `seq`), read into `view` and kept up to
        `snaplen` bytes; None if nothing is queued. InterfaceGone if the interface went away."""
        if self.ring is not None:
            return self._from_ring(snaplen, seq)
        try:
            size, ancdata, _flags, addr = self.sock.recvmsg_into(
                [view], socket.CMSG_SPACE(16), socket.MSG_DONTWAIT | socket.MSG_TRUNC)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno in GONE:
                raise InterfaceGone(self.point.label) from None
            raise
        stamp = time.time_ns()
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec * 1_000_000_000 + nsec
        pkttype = addr[2] if addr else 0
        return Packet(stamp, self.point.label, "out" if pkttype == PACKET_OUTGOING else "in",
                      PKTTYPES.get(pkttype, str(pkttype)), bytes(view[:min(size, snaplen)]),
                      size, self.upper, seq)


    def _from_ring(self, snaplen: int, seq: int) -> Packet | None:
        frame = self.ring.next(snaplen)
        if frame is None:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in GONE:
                raise InterfaceGone(self.point.label)
            return None
        stamp, pkttype, data, wirelen = frame
        return Packet(stamp, self.point.label, "out" if pkttype == PACKET_OUTGOING else "in",
                      PKTTYPES.get(pkttype, str(pkttype)), data, wirelen, self.upper, seq)


def _ifindex(sock: socket.socket, iface: str) -> int:
    req = struct.pack("16si", iface.encode(), 0)
    return struct.unpack("16si", fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, req))[1]


def _driver(sock: socket.socket, iface: str) -> str:
    """The interface's driver name ("veth", "bridge", ...) by ETHTOOL_GDRVINFO; "" if unknown."""
    info = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GDRVINFO), 196)
    req = bytearray(struct.pack("16sP", iface.encode(), ctypes.addressof(info)))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, req)
    except OSError:
        return ""
    return info.raw[4:36].split(b"\0", 1)[0].decode(errors="replace")


def _buffer_or_ring(sock: socket.socket, size: int, ring: bool | None) -> Ring | None:
    """Give `sock` a receive buffer of `size` bytes, or a ring of that size (see the module's
    text for which); returns the ring, if it has one."""
    if ring is None and os.environ.get("LABKIT_CAPTURE_RING", "") in ("0", "1"):
        ring = os.environ["LABKIT_CAPTURE_RING"] == "1"
    if not ring:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
            return None
        except PermissionError:
            if ring is False:  # asked for a buffer: as large as rmem_max lets it be
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                return None
    return Ring(sock, size)


def open_socket(point: Point, bpf: bytes | None, buffer_size: int = DEFAULT_BUFFER,
                promisc: bool = True, ring: bool | None = None) -> PointSocket:
    """Open `point`'s packet socket inside its namespace, non-blocking and bound; call it from
    the thread that reads it (it enters the namespace and switches back). Needs privileges
    (check them first: a setns refused here is reported as a KernelError). `ring`: True for
    a TPACKET_V3 ring of `buffer_size` bytes, False for a receive buffer, None to choose."""
    if not netns.exists(point.namespace):
        raise UnknownName(f"capture point {point.label}: namespace {point.namespace!r} does not "
                          f"exist: bring the lab up first (labkit up STAGE [--lab NAME]) or "
                          f"check the lab name and the point (ROLE:IFACE, e.g. netns0:ceth0)")
    with netns.entered(point.namespace):
        # protocol 0: the socket receives nothing until bind, so no frame slips in unfiltered
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            _ifindex(sock, point.iface)
        except OSError:
            have = ", ".join(name for _, name in socket.if_nameindex())
            sock.close()
            raise UnknownName(f"capture point {point.label}: no interface {point.iface!r} in "
                              f"namespace {point.namespace!r} (it has: {have}); check the "
                              f"stage (`labkit status`) or the interface name") from None
    rx_ring = None
    try:
        rx_ring = _buffer_or_ring(sock, buffer_size, ring)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if bpf:
            prog = ctypes.create_string_buffer(bpf, len(bpf))
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                            struct.pack("HL", len(bpf) // 8, ctypes.addressof(prog)))
        if promisc:   # undone by the kernel when the socket closes
            mreq = struct.pack("iHH8s", _ifindex(sock, point.iface), PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        upper = _driver(sock, point.iface) in UPPER_DRIVERS
        sock.bind((point.iface, ETH_P_ALL))
        sock.setblocking(False)
    except OSError as e:
        if rx_ring is not None:
            rx_ring.close()
        sock.close()
        raise KernelError(f"capture point {point.label}: opening the packet socket failed: "
                          f"{e.strerror or e} (capturing needs root or CAP_NET_RAW)") from None
    return PointSocket(point, sock, upper, rx_ring)
