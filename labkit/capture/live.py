"""Packet captures on lab interfaces: several points at once, lossless, raw frames kept.

    with Capture(["netns0:ceth0", "host:veth0", "host:br0"], lab=lab) as cap:
        lab.ping("netns0", "172.18.0.20")
        cap.wait(until=lambda pkts: len(pkts.filter(proto="icmp")) >= 6)
    cap.packets                  # merged in time order; a table in a terminal and in Jupyter
    cap.packets.paths(proto="icmp")   # each packet followed across the points (capture.paths)
    cap.packets.write("ping.pcapng")

A capture point is "ROLE:IFACE" relative to a lab ("netns0:ceth0" is ceth0 in namespace
t1-netns0 of lab t1), or a (kernel namespace, interface) pair (labkit.capture.points). A
reader thread opens one packet socket per point inside the point's namespace
(labkit.capture.sockets: never scapy's sniffing, which cannot follow a setns) and reads them
all; frames are kept as bytes, and `Packet.scapy()` dissects one when asked.

No silent loss: each point's kernel counters (PACKET_STATISTICS: frames that passed the
filter, frames dropped for want of buffer) come with every result, and `stop()` first unhooks
every socket, then drains what the kernel queued, so captured == seen - dropped exactly.
"""
from __future__ import annotations

import contextlib
import html
import os
import select
import threading
import time
import weakref
from typing import Callable, Iterable

from ..errors import BadValue, LabkitError
from ..kernel import netns, privilege
from .packets import Packet, Packets, PointStats, sort_key
from .pcap import DEFAULT_SNAPLEN, compile_filter
from .points import Point, parse_point
from .sockets import DEFAULT_BUFFER, InterfaceGone, PointSocket, open_socket

__all__ = ["Capture", "capture", "stop_all", "Point", "parse_point", "Packet", "Packets", "PointStats",
           "compile_filter"]


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
        self._socks: list[PointSocket] = []
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
        reading; returns self. Frames that cross a point after start() returns are captured.
        NotPrivileged without CAP_NET_ADMIN and CAP_SYS_ADMIN (root), before anything opens."""
        if self._thread is not None:
            raise BadValue("this capture was already started; make a new Capture to capture again")
        privilege.require()
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
                s.read_counters()
            return [s.stats() for s in self._socks]

    def _run(self) -> None:
        try:
            for point in self.points:
                self._socks.append(open_socket(point, self._bpf, self.buffer_size, self.promisc))
        except BaseException as e:   # reported by start()
            for s in self._socks:
                s.close()
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

    def _drain(self, s: PointSocket, limit: int | None = None) -> bool:
        """Read up to `limit` queued frames of `s`; False if its interface went away."""
        if self._buf is None:
            self._buf = memoryview(bytearray(self.snaplen))
        n = 0
        while limit is None or n < limit:
            try:
                p = s.receive(self._buf, self.snaplen, self._total)
            except InterfaceGone:
                return False
            if p is None:
                return True
            n += 1
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
            s.unhook()
        for s in self._socks:
            with self._lock:
                s.read_counters()
            with contextlib.suppress(OSError):
                self._drain(s)
            with self._lock:
                s.close()
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
