"""Kernel primitives over rtnetlink: links, veth pairs, bridges, addresses, routes, neighbours.

`Netlink(ns)` holds one rtnetlink socket opened inside namespace `ns` (kernel name); every
call acts there. Each creating call has its undo (`delete_link`, `del_address`,
`del_route`); "already there" and "already gone" are not errors, anything else raises
KernelError naming the operation and the kernel's reason.

pyroute2's: every message, and the numbers it names. Requests are its message classes (ifinfmsg, ifaddrmsg,
rtmsg, ndmsg, nsidmsg: built in messages.py), encoded by it; replies are parsed by its
rtnetlink Marshal. labkit's: the socket, sequence numbers, batching, collecting acks and
errors. Why: pyroute2's sockets fail inside a running asyncio loop (every notebook has one),
IPRoute(netns=NAME) forks, and they wait for each answer; inside `with nl.batch():` the calls
that return nothing are queued and sent together in one send(): the kernel runs them in order
and answers only the ones that fail, and an ack of a closing no-op tells that all were run.
The first failure not in a call's "fine" list is raised when the batch is sent (at the latest
on leaving the block); the calls after it in that send have been run too.
pyroute2 is imported by the first Netlink(), not by `import labkit` (what each part costs:
benchmarks/README.md, "Where the time goes inside labkit").
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket

from . import netns
from ..errors import KernelError

REPLY_TIMEOUT = 30.0
SO_RCVBUFFORCE = 33                   # socket(7); Python's socket module does not name it
BATCH_MESSAGES = 128                  # per send(): bounds the open fds and the error replies queued
BATCH_BYTES = 1 << 16

m = None                              # labkit.kernel.messages, imported by the first Netlink()


def _load() -> None:
    global m
    if m is None:
        from . import messages
        m = messages


class Netlink:
    """An rtnetlink socket bound to one namespace; a context manager (closes the socket)."""

    def __init__(self, ns: str):
        self.ns = ns
        _load()
        with netns.entered(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      socket.NETLINK_ROUTE)
        try:  # a batch (64 KiB at most) and its error replies fit the default buffers
            self.sock.setsockopt(m.SOL_NETLINK, m.NETLINK_CAP_ACK, 1)  # errors without our request
            self.sock.setsockopt(m.SOL_NETLINK, m.NETLINK_EXT_ACK, 1)  # ... but with the kernel's reason
            self.sock.settimeout(REPLY_TIMEOUT)  # the kernel answers at once; never hang a notebook
        except OSError:
            self.sock.close()
            raise
        self._replies_parser = m.Replies()
        self._seq = 0
        self._queue: list | None = None       # (seq, what, ok, fd to close, echo) while batching
        self._queued: list[bytes] = []
        self._queued_bytes = self._queued_echoes = 0
        self._echo_room = 0                   # echoed links that fit the receive buffer at once
        self._index: dict[str, int] = {}
        self.created: dict[str, m.Link] = {}  # links made with echo=True, as the kernel reported them

    def close(self) -> None:
        """Close the socket (a batch still queued is dropped)."""
        self._drop_queue()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- messages --------------------------------------------------------------------------
    def _message(self, kind: int, flags: int, msg) -> tuple[int, bytes]:
        """Give pyroute2 message `msg` its header (a new sequence number) and encode it."""
        self._seq += 1
        msg["header"] = {"type": kind, "flags": flags | m.NLM_F_REQUEST, "sequence_number": self._seq}
        msg.encode()
        return self._seq, msg.data

    def _send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError as e:
            raise KernelError(f"sending netlink requests in namespace {self.ns!r} failed: "
                              f"{e.strerror} (errno {e.errno})") from None

    def _replies(self, seq: int, earlier: bool = False):
        """Yield each reply to `seq` (and, if asked, to the requests sent before it: a batch),
        parsed by pyroute2, until `seq`'s ack or the end of its dump."""
        while True:
            try:
                data = self.sock.recv(1 << 17)
            except TimeoutError:
                raise KernelError(f"the kernel did not answer a netlink request in namespace "
                                  f"{self.ns!r} within {REPLY_TIMEOUT} s; run `labkit up` "
                                  f"again, or `labkit down` to reset") from None
            except OSError as e:
                raise KernelError(f"reading netlink replies in namespace {self.ns!r} failed: "
                                  f"{e.strerror} (errno {e.errno})") from None
            for msg in self._replies_parser.parse(data):
                header = msg["header"]
                rseq = header["sequence_number"]
                if rseq == seq or (earlier and rseq < seq):
                    yield msg
                    if rseq == seq and (header["type"] in (m.NLMSG_DONE, m.NLMSG_ERROR)
                                        or not header["flags"] & m.NLM_F_MULTI):
                        return  # an ack, the end of a dump, or the one answer to a get

    def _fail(self, what: str, code: int, reason: str) -> KernelError:
        extra = f": {reason}" if reason else ""
        return KernelError(f"{what} in namespace {self.ns!r} failed: "
                           f"{os.strerror(code)} (errno {code}){extra}")

    def _do(self, what: str, kind: int, flags: int, msg, ok=(), fd: int | None = None,
            echo: str | None = None) -> None:
        """Run a request that returns nothing: now, or queued if a batch is open. With `echo`
        (a link's name), the kernel's copy of the link it made is kept in `self.created`."""
        if echo is not None:
            flags |= m.NLM_F_ECHO
        if self._queue is not None:
            try:
                seq, data = self._message(kind, flags, msg)
            except BaseException:
                if fd is not None:
                    os.close(fd)
                raise
            self._queue.append((seq, what, ok, fd, echo))
            self._queued.append(data)
            self._queued_bytes += len(data)
            self._queued_echoes += echo is not None
            if (len(self._queue) >= BATCH_MESSAGES or self._queued_bytes >= BATCH_BYTES
                    or (echo is not None and self._queued_echoes >= self._echo_limit())):
                self._flush()
            return
        try:
            seq, data = self._message(kind, flags | m.NLM_F_ACK, msg)
            self._send(data)
        finally:
            if fd is not None:
                os.close(fd)
        for reply in self._answers(seq, what, ok):
            if reply["header"]["type"] == m.RTM_NEWLINK and echo is not None:
                self.created[echo] = m.link(reply)

    def _answers(self, seq: int, what: str, ok=()):
        """Yield each reply to request `seq` that is not an error; raise the kernel's error for
        `what` unless its errno is in `ok` (an ack, errno 0, is not yielded either)."""
        for reply in self._replies(seq):
            if reply["header"]["type"] == m.NLMSG_ERROR:
                code, reason = m.error(reply)
                if code and code not in ok:
                    raise self._fail(what, code, reason)
            else:
                yield reply

    def _flush(self) -> None:
        """Send the queued requests and a closing no-op; raise the first failure not allowed."""
        queue, messages = self._queue, self._queued
        if not queue:
            return
        self._queue, self._queued, self._queued_bytes, self._queued_echoes = [], [], 0, 0
        try:
            seq, noop = self._message(m.NLMSG_NOOP, m.NLM_F_ACK, m.noop())
            self._send(b"".join(messages) + noop)
        finally:
            for item in queue:
                if item[3] is not None:
                    os.close(item[3])
        failed, echoes = {}, {item[0]: item[4] for item in queue if item[4] is not None}
        for reply in self._replies(seq, earlier=True):
            header = reply["header"]
            if header["type"] == m.NLMSG_ERROR:
                code, reason = m.error(reply)
                if code:
                    failed[header["sequence_number"]] = (code, reason)
            elif header["type"] == m.RTM_NEWLINK and header["sequence_number"] in echoes:
                self.created[echoes[header["sequence_number"]]] = m.link(reply)
        for qseq, what, ok, _, _ in queue:
            code, reason = failed.get(qseq, (0, ""))
            if code and code not in ok:
                raise self._fail(what, code, reason)

    def _echo_limit(self) -> int:
        """How many echoed links (~4 KiB each in the receive buffer) one send may ask for: the
        kernel drops an echo that does not fit, and the socket reports ENOBUFS."""
        if not self._echo_room:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 22)
            except OSError:
                pass  # not privileged: keep the buffer the system allows
            self._echo_room = max(8, self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 8192)
        return self._echo_room

    def flush(self) -> None:
        """Inside `batch()`: send what is queued now (and raise its first failure)."""
        self._flush()

    def _drop_queue(self) -> None:
        for item in self._queue or ():
            if item[3] is not None:
                os.close(item[3])
        if self._queue is not None:
            self._queue, self._queued, self._queued_bytes, self._queued_echoes = [], [], 0, 0

    @property
    def batching(self) -> bool:
        """True inside `batch()`."""
        return self._queue is not None

    @contextlib.contextmanager
    def batch(self):
        """Queue the calls that return nothing (add, set, delete) and send them together.

        Calls that read (links, index, addresses, routes, neighbours, fdb, netnsid_of) send
        the queue first, so they see its effects. Failures are raised when the queue is sent."""
        if self._queue is not None:
            yield self
            return
        self._queue, self._queued, self._queued_bytes, self._queued_echoes = [], [], 0, 0
        try:
            yield self
            self._flush()
        finally:
            self._drop_queue()
            self._queue = None

    def _dump(self, what: str, kind: int, msg, dump: bool = True, ok=()):
        """Yield each reply (a pyroute2 message) to a dump or get request (none if the kernel
        answers with an error in `ok`)."""
        if self._queue:
            self._flush()
        seq, data = self._message(kind, m.NLM_F_DUMP if dump else 0, msg)
        self._send(data)
        for reply in self._answers(seq, what, ok):
            if reply["header"]["type"] != m.NLMSG_DONE:
                yield reply

    # -- links -----------------------------------------------------------------------------
    def links(self) -> list[m.Link]:
        """Every link, as a Link record: index, name, kind, mac, up, master (index), link, link_netnsid."""
        result = [m.link(r) for r in self._dump("listing links", m.RTM_GETLINK, m.link_query())]
        self._index = {link.name: link.index for link in result}
        return result

    def link(self, name: str) -> m.Link | None:
        """One link by name, as `links()` gives it, or None if there is no such link."""
        found = [m.link(r) for r in self._dump(f"reading link {name}", m.RTM_GETLINK,
                                               m.link_query(name), dump=False,
                                               ok=(errno.ENODEV, errno.ENOENT))]
        if found:
            self._index[name] = found[0].index
            return found[0]
        self._index.pop(name, None)
        return None

    def remember(self, name: str, index: int) -> None:
        """Note that link `name` has index `index` here (learned elsewhere: saves a lookup)."""
        self._index[name] = index

    def index(self, name: str) -> int | None:
        """Interface index of `name`, or None if there is no such link."""
        if name not in self._index:
            self.link(name)
        return self._index.get(name)

    def add_veth(self, name: str, mac: str | None, peer: str, peer_ns: str | None,
                 peer_mac: str | None, *, master: str | None = None, up: bool = False,
                 echo: bool = False) -> None:
        """Create veth `name` here with its peer `peer` in namespace `peer_ns` (None: here).

        `master` (a bridge here) and `up` are set in the same request; the peer starts down
        (the kernel cannot bring it up before the pair is joined: ENOTCONN). With `echo`, the
        new link as the kernel reports it (its "link" is the peer's index in its namespace)
        lands in `self.created[name]` once sent, if the kernel echoes (Linux 6.2 and later).
        Undo: delete_link(name) (removes both ends)."""
        master_index = self._require(master) if master else None
        fd = None
        if peer_ns is not None and peer_ns != self.ns:
            fd = os.open(netns.path(peer_ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            msg = m.new_link(name, mac, "veth", up, master_index, m.veth_peer(peer, peer_mac, fd))
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        self._do(f"creating veth pair {name} <-> {peer}", m.RTM_NEWLINK,
                 m.NLM_F_CREATE | m.NLM_F_EXCL, msg, fd=fd, echo=name if echo else None)
        self._index.pop(name, None)
        if fd is None:
            self._index.pop(peer, None)

    def add_bridge(self, name: str, mac: str | None, *, up: bool = False) -> None:
        """Create bridge `name` (`up` in the same request). Undo: delete_link(name)."""
        self._do(f"creating bridge {name}", m.RTM_NEWLINK, m.NLM_F_CREATE | m.NLM_F_EXCL,
                 m.new_link(name, mac, "bridge", up))
        self._index.pop(name, None)

    def delete_link(self, name: str) -> None:
        """Delete link `name`; a no-op if it is gone."""
        idx = self.index(name)
        if idx is not None:
            self._do(f"deleting {name}", m.RTM_DELLINK, 0, m.link_request(idx), ok=(errno.ENODEV,))
            self._index.clear()  # a veth's peer goes too; ports of a bridge change

    def set_link(self, name: str, **attrs) -> None:
        """Set link attributes: up=bool, mac=str, master=name or None (nomaster)."""
        idx = self._require(name)
        mac = attrs.get("mac") or None
        master = None
        if "master" in attrs:
            master = self._require(attrs["master"]) if attrs["master"] else 0
        up = bool(attrs["up"]) if "up" in attrs else None
        if mac or master is not None or up is not None:
            names = {"mac": "address", "master": "master", "up": "state"}
            keys = sorted(names[k] for k in attrs if k in names and (k != "mac" or attrs["mac"]))
            self._do(f"setting {name} {keys}", m.RTM_NEWLINK, 0, m.set_link(idx, mac, master, up))

    def _require(self, name: str) -> int:
        idx = self.index(name)
        if idx is None:
            raise KernelError(f"interface {name!r} does not exist in namespace {self.ns!r}")
        return idx

    def netnsid_of(self, ns: str) -> int | None:
        """The id under which this namespace knows namespace `ns` (None if it has none)."""
        fd = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            replies = list(self._dump("reading netnsid", m.RTM_GETNSID, m.nsid_query(fd), dump=False))
        finally:
            os.close(fd)
        return m.nsid(replies[0]) if replies else None

    # -- addresses -------------------------------------------------------------------------
    def addresses(self) -> list[tuple[int, str]]:
        """Every IPv4 address and global IPv6 address as (interface index, "a.b.c.d/len")."""
        found = map(m.address, self._dump("listing addresses", m.RTM_GETADDR, m.address_query()))
        return [a for a in found if a is not None]

    def add_address(self, name: str, cidr: str) -> None:
        """Add `cidr` to `name` (no-op if present). Undo: del_address."""
        self._do(f"adding {cidr} to {name}", m.RTM_NEWADDR, m.NLM_F_CREATE | m.NLM_F_EXCL,
                 m.address_request(self._require(name), cidr), ok=(errno.EEXIST,))

    def del_address(self, name: str, cidr: str) -> None:
        """Remove `cidr` from `name` (no-op if absent)."""
        idx = self.index(name)
        if idx is None:
            return
        self._do(f"removing {cidr} from {name}", m.RTM_DELADDR, 0, m.address_request(idx, cidr),
                 ok=(errno.EADDRNOTAVAIL, errno.ENODEV))

    # -- routes ----------------------------------------------------------------------------
    def routes(self, static_only: bool = False) -> list[dict]:
        """Routes of the main table, IPv4 then IPv6 (not link-local): dst ("default" or CIDR),
        gateway, dev (index), proto, src, family."""
        found = [r for family in (socket.AF_INET, socket.AF_INET6)
                 for r in map(m.route, self._dump("listing routes", m.RTM_GETROUTE, m.route_query(family)))]
        return [r for r in found
                if r is not None and not (static_only and r["proto"] == m.RTPROT_KERNEL)]

    def add_route(self, dst: str, gateway: str | None = None, dev: str | None = None) -> None:
        """Add a route (dst "default" or CIDR); no-op if the same route is there. Undo: del_route."""
        msg = m.route_request(dst, gateway, self._require(dev) if dev else None, creating=True)
        self._do(f"adding route {dst}", m.RTM_NEWROUTE, m.NLM_F_CREATE | m.NLM_F_EXCL, msg,
                 ok=(errno.EEXIST,))

    def del_route(self, dst: str, gateway: str | None = None, dev: int | None = None,
                  family: int | None = None) -> None:
        """Delete a route (dev as an index; `family` as routes() gives it); no-op if it is gone."""
        self._do(f"deleting route {dst}", m.RTM_DELROUTE, 0,
                 m.route_request(dst, gateway, dev, creating=False, family=family), ok=(errno.ESRCH,))

    # -- neighbours ------------------------------------------------------------------------
    def neighbours(self) -> list[dict]:
        """The IPv4 neighbour (ARP) table: ifindex, ip, mac (None until resolved), state
        ("REACHABLE", "STALE", "DELAY", "PROBE", "INCOMPLETE", "FAILED", "PERMANENT", "NOARP")."""
        return [m.neighbour(r) for r in self._dump("listing neighbours", m.RTM_GETNEIGH,
                                                   m.neighbour_query(socket.AF_INET))]

    def neighbours6(self) -> list[dict]:
        """The IPv6 neighbour (NDP) table, as `neighbours()` gives the ARP table."""
        return [m.neighbour(r) for r in self._dump("listing IPv6 neighbours", m.RTM_GETNEIGH,
                                                   m.neighbour_query(socket.AF_INET6))]

    def fdb(self) -> list[dict]:
        """The bridges' forwarding database: ifindex (the port), master (the bridge's index;
        None for a port's own entries), mac, permanent (else learned), vlan (None: untagged)."""
        return [m.fdb_entry(r) for r in self._dump("listing the bridge FDB", m.RTM_GETNEIGH,
                                                   m.neighbour_query(socket.AF_BRIDGE))]
