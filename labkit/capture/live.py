"""Packet captures on lab interfaces: several points at once, lossless, raw frames kept.

    with Capture(["netns0:ceth0", "host:veth0", "host:br0"], lab=lab) as cap:
        lab.ping("netns0", "172.18.0.20")
        cap.wait(until=lambda pkts: len(pkts.filter(proto="icmp")) >= 6)
    cap.packets                  # merged in time order; a table in a terminal and in Jupyter
    cap.packets.paths(proto="icmp")   # each packet followed across the points (packetpath)
    cap.packets.write("ping.pcapng")

A capture point is "ROLE:IFACE" relative to a lab ("netns0:ceth0" is ceth0 in namespace
t1-netns0 of lab t1), or a (kernel namespace, interface) pair. scapy cannot follow a setns
after import (scapy#3467), so labkit does not sniff with scapy: a reader thread opens one
AF_PACKET socket per point from inside the point's namespace (`netns.entered`), gives it a
64 MiB receive buffer (SO_RCVBUFFORCE; scapy's default loses 95% of a 20,000-frame burst on
a veth), the BPF filter compiled by libpcap, kernel timestamps (SO_TIMESTAMPNS) and
promiscuous mode (a bridge then also passes up the frames it forwards between ports, as under
tcpdump). Frames are kept as bytes; `Packet.scapy()` dissects one when asked.

No silent loss: each point's kernel counters (PACKET_STATISTICS: frames that passed the
filter, frames dropped for want of buffer) come with every result, and `stop()` first unhooks
every socket, then drains what the kernel queued, so captured == seen - dropped exactly.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import html
import os
import select
import socket
import struct
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable

from ..kernel import netns
from . import pcap
from ..model import plan
from ..errors import BadName, BadValue, KernelError, LabkitError, UnknownName
from .packets import Packet, Packets, PointStats, sort_key
from .pcap import compile_filter

__all__ = ["Capture", "capture", "stop_all", "Point", "parse_point", "Packet", "Packets", "PointStats",
           "compile_filter"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 3
PACKET_OUTGOING = 4
PKTTYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}
UPPER_DRIVERS = {"bridge", "bonding", "802.1Q VLAN Support", "team"}
DEFAULT_BUFFER = 64 << 20
DEFAULT_SNAPLEN = pcap.DEFAULT_SNAPLEN


@dataclass(frozen=True)
class Point:
    """Where to capture: interface `iface` in kernel namespace `namespace`, shown as `label`."""
    namespace: str
    iface: str
    label: str

    def __str__(self) -> str:
        return self.label


def _lab_name(lab) -> str:
    return lab if isinstance(lab, str) else getattr(lab, "name", "")


def parse_point(spec, lab="") -> Point:
    """A capture point from "ROLE:IFACE" (relative to `lab`, a name or a Lab), a
    (kernel namespace, interface) pair, or a Point. Checks the names, not the kernel."""
    if isinstance(spec, Point):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        ns, iface = spec
        plan.check_kernel_name(ns, "namespace")
        plan.check_kernel_name(iface, "interface")
        return Point(ns, iface, f"{ns}:{iface}")
    if not isinstance(spec, str) or spec.count(":") != 1 or spec.startswith(":") or spec.endswith(":"):
        raise BadName(f"capture point {spec!r} is not NAMESPACE:INTERFACE: write it like "
                      f"netns0:ceth0 or host:br0 (namespace role within the lab)")
    role, iface = spec.split(":")
    plan.check_kernel_name(iface, "interface")
    return Point(plan.namespace_name(plan.check_lab_name(_lab_name(lab)), role), iface, spec)


class _Socket:
    """One point's open packet socket and its running counts (used by the reader thread)."""

    def __init__(self, point: Point, sock: socket.socket, upper: bool):
        self.point, self.sock, self.upper = point, sock, upper
        self.packets: list[Packet] = []
        self.seen = self.dropped = 0
        self.closed = self.gone = False

    def stats(self) -> PointStats:
        return PointStats(self.point.label, len(self.packets), self.seen, self.dropped, self.gone)


def _ifindex(sock: socket.socket, iface: str) -> int:
    req = struct.pack("16si", iface.encode(), 0)
    return struct.unpack("16si", fcntl.ioctl(sock.fileno(), 0x8933, req))[1]   # SIOCGIFINDEX


def _driver(sock: socket.socket, iface: str) -> str:
    """The interface's driver name ("veth", "bridge", ...) by ETHTOOL_GDRVINFO; "" if unknown."""
    info = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GDRVINFO), 196)
    req = bytearray(struct.pack("16sP", iface.encode(), ctypes.addressof(info)))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, req)
    except OSError:
        return ""
    return info.raw[4:36].split(b"\0", 1)[0].decode(errors="replace")


def _open(point: Point, bpf: bytes | None, buffer_size: int, promisc: bool) -> _Socket:
    """Open `point`'s packet socket inside its namespace; call from the reader thread."""
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
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer_size)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
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
        sock.close()
        raise KernelError(f"capture point {point.label}: opening the packet socket failed: "
                          f"{e.strerror or e} (capturing needs root or CAP_NET_RAW)") from None
    return _Socket(point, sock, upper)


class Capture:
    """Capture at several points at once; a context manager, or `start()` ... `stop()`.

    `points`: specs for `parse_point` ("netns0:ceth0" relative to `lab`, a lab name or a Lab;
    or (kernel namespace, interface)); a single string is one point. `filter`: a tcpdump
    expression run in the kernel. `count`: stop after this many packets in all (the first
    ones in time; the others the kernel queued meanwhile count as seen, not kept). `on_packet`
    is called from the reader thread with each Packet as it comes (keep it quick).
    Stop captures before tearing their lab down: an open socket keeps its namespace alive.
    """

    def __init__(self, points, *, lab="", filter: str | None = None, count: int | None = None,
                 buffer_size: int = DEFAULT_BUFFER, snaplen: int = DEFAULT_SNAPLEN,
                 promisc: bool = True, on_packet: Callable[[Packet], None] | None = None):
        specs = [points] if isinstance(points, (str, Point)) else list(points)
        if not specs:
            raise BadValue("a capture needs at least one point, e.g. netns0:ceth0")
        self.points = [parse_point(s, lab) for s in specs]
        labels = [p.label for p in self.points]
        if len(set(labels)) != len(labels):
            raise BadValue(f"capture points repeat: {', '.join(labels)}; name each one once")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise BadValue(f"capture count must be a whole number >= 1, got {count!r}")
        self.filter, self.count = filter, count
        self.buffer_size, self.snaplen, self.promisc = buffer_size, snaplen, promisc
        self.on_packet = on_packet
        self._bpf = compile_filter(filter) if filter else None
        self._socks: list[_Socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready, self._done = threading.Event(), threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._wake = None
        self._total = 0
        self._result: Packets | None = None
        self._buf: memoryview | None = None       # the reader thread's receive buffer

    def __repr__(self) -> str:
        state = "done" if self._done.is_set() else "running" if self._thread else "not started"
        return f"<Capture {', '.join(p.label for p in self.points)}: {state}, {self._total} packets>"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>" + self.packets._repr_html_()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between start() and the end of capture (stop(), count reached, or an error)."""
        return self._thread is not None and not self._done.is_set()

    def start(self) -> Capture:
        """Open every point's socket (errors raise here, with nothing left open) and start
        reading; returns self. Frames that cross a point after start() returns are captured."""
        if self._thread is not None:
            raise BadValue("this capture was already started; make a new Capture to capture again")
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="labkit-capture", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._close_wake()
            error, self._error = self._error, None
            raise error
        _live.add(self)
        return self

    def stop(self) -> Packets:
        """Stop reading, keep what the kernel had queued, and return the packets with counts.
        Safe to call twice; raises what went wrong in the reader thread, if anything."""
        if self._thread is None:
            raise BadValue("this capture was never started: call start() or use `with`")
        self._stopping = True
        if not self._done.is_set():
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")
        self._thread.join()
        self._close_wake()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.packets

    def _close_wake(self) -> None:
        if self._wake is not None:
            for fd in self._wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake = None

    def wait(self, count: int | None = None, timeout: float = 10.0,
             until: Callable[[Packets], bool] | None = None) -> bool:
        """Poll until `count` packets are captured in all, or `until(packets)` holds, or (given
        neither) the capture ends by itself; False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if count is not None and self._total >= count:
                return True
            if until is not None and until(self.packets):
                return True
            if count is None and until is None and self._done.is_set():
                return True
            if self._done.is_set() or time.monotonic() >= deadline:
                return False
            self._done.wait(0.005 if until is None else 0.02)

    @property
    def packets(self) -> Packets:
        """The packets so far (all of them once stopped), merged in time order, with counts."""
        if self._result is not None:
            return self._result
        with self._lock:
            items = [p for s in self._socks for p in s.packets]
        return Packets(items, self.stats)

    @property
    def stats(self) -> list[PointStats]:
        """Per point: captured, seen by the kernel, dropped by the kernel (read now)."""
        with self._lock:
            for s in self._socks:
                self._read_stats(s)
            return [s.stats() for s in self._socks]

    def _read_stats(self, s: _Socket) -> None:
        """Add the kernel's counters to `s` (reading them resets them); call under the lock."""
        if s.closed:
            return
        with contextlib.suppress(OSError):
            packets, drops = struct.unpack("II", s.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            s.seen += packets
            s.dropped += drops

    def _run(self) -> None:
        try:
            for point in self.points:
                self._socks.append(_open(point, self._bpf, self.buffer_size, self.promisc))
        except BaseException as e:   # reported by start()
            for s in self._socks:
                s.sock.close()
            self._socks = []
            self._error = e
            self._done.set()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop()
        except BaseException as e:   # reported by stop()
            self._error = e
        finally:
            self._finish()
            self._done.set()

    def _loop(self) -> None:
        poller = select.poll()
        by_fd = {s.sock.fileno(): s for s in self._socks}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        while not self._stopping:
            for fd, events in poller.poll():
                s = by_fd.get(fd)
                if s is not None and not self._drain(s, 512):
                    poller.unregister(fd)
                    s.gone = True

    def _drain(self, s: _Socket, limit: int | None = None) -> bool:
        """Read up to `limit` queued frames of `s`; False if its interface went away."""
        if self._buf is None:
            self._buf = memoryview(bytearray(self.snaplen))
        view = self._buf
        anc = socket.CMSG_SPACE(16)
        flags = socket.MSG_DONTWAIT | socket.MSG_TRUNC
        n = 0
        while limit is None or n < limit:
            try:
                size, ancdata, _flags, addr = s.sock.recvmsg_into([view], anc, flags)
            except BlockingIOError:
                return True
            except OSError as e:
                if e.errno in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
                    return False
                raise
            n += 1
            stamp = time.time_ns()
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamp = sec * 1_000_000_000 + nsec
            pkttype = addr[2] if addr else 0
            p = Packet(stamp, s.point.label, "out" if pkttype == PACKET_OUTGOING else "in",
                       PKTTYPES.get(pkttype, str(pkttype)), bytes(view[:min(size, self.snaplen)]),
                       size, s.upper, self._total)
            s.packets.append(p)
            self._total += 1
            if self.on_packet is not None:
                self.on_packet(p)
            if self.count is not None and self._total >= self.count:
                self._stopping = True
        return True

    def _finish(self) -> None:
        """Unhook every socket (bind to protocol 0), then read counts and drain the queues."""
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.sock.bind((s.point.iface, 0))
        for s in self._socks:
            with self._lock:
                self._read_stats(s)
            with contextlib.suppress(OSError):
                self._drain(s)
            with self._lock:
                s.closed = True
                s.sock.close()
        if self.count is not None and self._total > self.count:
            # points are read one after another: keep the first `count` in time, not in reading
            everything = sorted((p for s in self._socks for p in s.packets),
                                key=lambda p: sort_key(p.time_ns, p.direction, p.upper, p.seq))
            keep = {id(p) for p in everything[:self.count]}
            for s in self._socks:
                s.packets = [p for p in s.packets if id(p) in keep]
        self._result = Packets([p for s in self._socks for p in s.packets],
                               [s.stats() for s in self._socks])


_live: weakref.WeakSet = weakref.WeakSet()


def stop_all(namespaces: Iterable[str] | None = None) -> int:
    """Stop every running capture, or those with a point in one of `namespaces` (kernel
    names); returns how many. Call it before deleting a lab's namespaces: an open packet
    socket keeps its namespace (and the interfaces in it) alive after the delete."""
    wanted = None if namespaces is None else set(namespaces)
    stopped = 0
    for cap in list(_live):
        if cap.running and (wanted is None or any(p.namespace in wanted for p in cap.points)):
            with contextlib.suppress(LabkitError):
                cap.stop()
            stopped += 1
    return stopped


netns.before_delete(stop_all)


def capture(points, **kwargs) -> Capture:
    """Start a Capture (see its docstring) and return it; stop it with `.stop()`."""
    return Capture(points, **kwargs).start()
