"""Kernel primitives over rtnetlink: links, veth pairs, bridges, addresses, routes.

`Netlink(ns)` holds one rtnetlink socket opened inside namespace `ns` (kernel name); every
call acts there. Each creating call has its undo (`delete_link`, `del_address`,
`del_route`); "already there" and "already gone" are not errors, anything else raises
KernelError naming the operation.

The messages are encoded here with `struct` on a plain socket. pyroute2 did this before;
its import alone costs 0.1 s and its synchronous wrapper about 1 ms a request, which made
a 200-container lab take seconds. Inside `with nl.batch():` the calls that return nothing
are queued and sent together in one send(): the kernel runs them in order and answers only
the ones that fail, and an ack of a closing no-op tells that all were run. The first
failure not in a call's "fine" list is raised when the batch is sent (at the latest on
leaving the block); the calls after it have been run too.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

from . import netns
from ..errors import KernelError

IFF_UP = 1
REPLY_TIMEOUT = 30.0
RT_PROTO_KERNEL = 2
RT_PROTO_STATIC = 4
RT_TABLE_MAIN = 254

# netlink(7), rtnetlink(7): message types, flags and attributes used here
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x8, 0x300
NLM_F_EXCL, NLM_F_CREATE, NLM_F_ACK_TLVS = 0x200, 0x400, 0x200
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
SO_RCVBUFFORCE = 33
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_GETNSID = 90
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_MASTER = 1, 3, 5, 10
IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 18, 28, 29, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 7, 15
RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE, RTN_UNICAST = 0, 255, 1
NETNSA_NSID, NETNSA_FD = 1, 3

_HDR = struct.Struct("=IHHII")        # nlmsghdr: length, type, flags, seq, port id
_IFINFO = struct.Struct("=BxHiII")    # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")     # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, proto, scope, type, flags
_NLA = struct.Struct("=HH")           # nlattr: length, type
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")

BATCH_MESSAGES = 128                  # per send(): bounds the open fds and the error replies queued
BATCH_BYTES = 1 << 16


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return _NLA.pack(size, kind) + data + b"\0" * (-size % 4)


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, _U32.pack(value))


def _name(kind: int, name: str) -> bytes:
    return _attr(kind, name.encode() + b"\0")


def _mac(kind: int, mac: str) -> bytes:
    return _attr(kind, bytes.fromhex(mac.replace(":", "")))


def _ip(kind: int, address: str) -> bytes:
    return _attr(kind, socket.inet_aton(address))


def _attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (offset, end) of its payload in data[start:end] (nesting flags dropped)."""
    found = {}
    while start + 4 <= end:
        size, kind = _NLA.unpack_from(data, start)
        if size < 4:
            break
        found[kind & 0x3FFF] = (start + 4, start + size)
        start += (size + 3) & ~3
    return found


def _str(data: bytes, span: tuple[int, int] | None) -> str | None:
    return None if span is None else data[span[0]:span[1]].split(b"\0", 1)[0].decode()


def _int(data: bytes, span: tuple[int, int] | None, fmt: struct.Struct = _U32) -> int | None:
    return None if span is None else fmt.unpack_from(data, span[0])[0]


def _ipv4(data: bytes, span: tuple[int, int] | None) -> str | None:
    return None if span is None else socket.inet_ntoa(data[span[0]:span[0] + 4])


class Netlink:
    """An rtnetlink socket bound to one namespace; a context manager (closes the socket)."""

    def __init__(self, ns: str):
        self.ns = ns
        with netns.entered(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      socket.NETLINK_ROUTE)
        try:  # a batch (64 KiB at most) and its error replies fit the default buffers
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)   # errors without our request
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)   # ... but with the kernel's reason
            self.sock.settimeout(REPLY_TIMEOUT)  # the kernel answers at once; never hang a notebook
        except OSError:
            self.sock.close()
            raise
        self._seq = 0
        self._queue: list | None = None       # (seq, what, ok, fd to close, echo) while batching
        self._queued: list[bytes] = []
        self._queued_bytes = self._queued_echoes = 0
        self._echo_room = 0                   # echoed links that fit the receive buffer at once
        self._index: dict[str, int] = {}
        self.created: dict[str, dict] = {}    # links made with echo=True, as the kernel reported them

    def close(self) -> None:
        """Close the socket (a batch still queued is dropped)."""
        self._drop_queue()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- messages --------------------------------------------------------------------------
    def _message(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self._seq += 1
        return self._seq, _HDR.pack(16 + len(body), kind, flags | NLM_F_REQUEST, self._seq, 0) + body

    def _send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError as e:
            raise KernelError(f"sending netlink requests in namespace {self.ns!r} failed: "
                              f"{e.strerror} (errno {e.errno})") from None

    def _replies(self, seq: int, earlier: bool = False):
        """Yield (type, flags, data, offset, end) of each reply to `seq` (and, if asked, to the
        requests sent before it: a batch) until `seq`'s ack or end of dump."""
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
            off = 0
            while off + 16 <= len(data):
                size, kind, flags, rseq, _ = _HDR.unpack_from(data, off)
                if size < 16:
                    break
                end = off + size
                if rseq == seq or (earlier and rseq < seq):
                    yield kind, flags, data, off + 16, end
                    if rseq == seq and (kind in (NLMSG_DONE, NLMSG_ERROR) or not flags & NLM_F_MULTI):
                        return  # an ack, the end of a dump, or the one answer to a get
                off = (end + 3) & ~3

    @staticmethod
    def _error(flags: int, data: bytes, off: int, end: int) -> tuple[int, str]:
        """(errno, the kernel's reason or "") of an NLMSG_ERROR message (0: an ack)."""
        code = -_S32.unpack_from(data, off)[0]
        reason = ""
        if code and flags & NLM_F_ACK_TLVS:
            reason = _str(data, _attrs(data, off + 4 + 16, end).get(NLMSGERR_ATTR_MSG)) or ""
        return code, reason

    def _fail(self, what: str, code: int, reason: str) -> KernelError:
        extra = f": {reason}" if reason else ""
        return KernelError(f"{what} in namespace {self.ns!r} failed: "
                           f"{os.strerror(code)} (errno {code}){extra}")

    def _do(self, what: str, kind: int, flags: int, body: bytes, ok=(), fd: int | None = None,
            echo: str | None = None) -> None:
        """Run a request that returns nothing: now, or queued if a batch is open. With `echo`
        (a link's name), the kernel's copy of the link it made is kept in `self.created`."""
        if echo is not None:
            flags |= NLM_F_ECHO
        if self._queue is not None:
            seq, msg = self._message(kind, flags, body)
            self._queue.append((seq, what, ok, fd, echo))
            self._queued.append(msg)
            self._queued_bytes += len(msg)
            self._queued_echoes += echo is not None
            if (len(self._queue) >= BATCH_MESSAGES or self._queued_bytes >= BATCH_BYTES
                    or (echo is not None and self._queued_echoes >= self._echo_limit())):
                self._flush()
            return
        try:
            seq, msg = self._message(kind, flags | NLM_F_ACK, body)
            self._send(msg)
        finally:
            if fd is not None:
                os.close(fd)
        for mkind, mflags, data, off, end in self._replies(seq):
            if mkind == NLMSG_ERROR:
                code, reason = self._error(mflags, data, off, end)
                if code and code not in ok:
                    raise self._fail(what, code, reason)
            elif mkind == RTM_NEWLINK and echo is not None:
                self.created[echo] = self._link(data, off, end)

    def _flush(self) -> None:
        """Send the queued requests and a closing no-op; raise the first failure not allowed."""
        queue, messages = self._queue, self._queued
        if not queue:
            return
        self._queue, self._queued, self._queued_bytes, self._queued_echoes = [], [], 0, 0
        seq, noop = self._message(NLMSG_NOOP, NLM_F_ACK, b"")
        try:
            self._send(b"".join(messages) + noop)
        finally:
            for item in queue:
                if item[3] is not None:
                    os.close(item[3])
        failed, echoes = {}, {item[0]: item[4] for item in queue if item[4] is not None}
        for mkind, mflags, data, off, end in self._replies(seq, earlier=True):
            if mkind == NLMSG_ERROR:
                code, reason = self._error(mflags, data, off, end)
                if code:
                    failed[_HDR.unpack_from(data, off + 4)[3]] = (code, reason)
            elif mkind == RTM_NEWLINK:
                rseq = _HDR.unpack_from(data, off - 16)[3]
                if rseq in echoes:
                    self.created[echoes[rseq]] = self._link(data, off, end)
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

        Calls that read (links, index, addresses, routes, netnsid_of) send the queue first,
        so they see its effects. Failures are raised when the queue is sent."""
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

    def _dump(self, what: str, kind: int, body: bytes, flags: int = NLM_F_DUMP, ok=()):
        """Yield (data, offset, end) of each reply message to a dump or get request (none if
        the kernel answers with an error in `ok`)."""
        if self._queue:
            self._flush()
        seq, msg = self._message(kind, flags, body)
        self._send(msg)
        for mkind, mflags, data, off, end in self._replies(seq):
            if mkind == NLMSG_ERROR:
                code, reason = self._error(mflags, data, off, end)
                if code and code not in ok:
                    raise self._fail(what, code, reason)
            elif mkind != NLMSG_DONE:
                yield data, off, end

    # -- links -----------------------------------------------------------------------------
    @staticmethod
    def _link(data: bytes, off: int, end: int) -> dict:
        _, _, index, flags, _ = _IFINFO.unpack_from(data, off)
        a = _attrs(data, off + 16, end)
        info = a.get(IFLA_LINKINFO)
        kind = _str(data, _attrs(data, *info).get(IFLA_INFO_KIND)) if info else None
        mac = a.get(IFLA_ADDRESS)
        return {
            "index": index,
            "name": _str(data, a.get(IFLA_IFNAME)),
            "kind": kind,
            "mac": data[mac[0]:mac[1]].hex(":") if mac else None,
            "up": bool(flags & IFF_UP),
            "master": _int(data, a.get(IFLA_MASTER)),
            "link": _int(data, a.get(IFLA_LINK)),
            "link_netnsid": _int(data, a.get(IFLA_LINK_NETNSID), _S32),
        }

    def links(self) -> list[dict]:
        """Every link as a plain dict: index, name, kind, mac, up, master (index), link, link_netnsid."""
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        result = [self._link(*m) for m in self._dump("listing links", RTM_GETLINK, body)]
        self._index = {link["name"]: link["index"] for link in result}
        return result

    def link(self, name: str) -> dict | None:
        """One link by name, as `links()` gives it, or None if there is no such link."""
        body = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name(IFLA_IFNAME, name)
                + _u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
        found = [self._link(*m) for m in self._dump(f"reading link {name}", RTM_GETLINK, body, 0,
                                                    ok=(errno.ENODEV, errno.ENOENT))]
        if found:
            self._index[name] = found[0]["index"]
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
        peer_attrs = _name(IFLA_IFNAME, peer) + (_mac(IFLA_ADDRESS, peer_mac) if peer_mac else b"")
        fd = None
        if peer_ns is not None and peer_ns != self.ns:
            fd = os.open(netns.path(peer_ns), os.O_RDONLY | os.O_CLOEXEC)
            peer_attrs += _u32(IFLA_NET_NS_FD, fd)
        try:
            peer_msg = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + peer_attrs
            info = _name(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
            body = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0)
                    + _name(IFLA_IFNAME, name) + (_mac(IFLA_ADDRESS, mac) if mac else b"")
                    + (_u32(IFLA_MASTER, self._require(master)) if master else b"")
                    + _attr(IFLA_LINKINFO, info))
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        self._do(f"creating veth pair {name} <-> {peer}", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                 body, fd=fd, echo=name if echo else None)
        self._index.pop(name, None)
        if fd is None:
            self._index.pop(peer, None)

    def add_bridge(self, name: str, mac: str | None, *, up: bool = False) -> None:
        """Create bridge `name` (`up` in the same request). Undo: delete_link(name)."""
        body = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0)
                + _name(IFLA_IFNAME, name) + (_mac(IFLA_ADDRESS, mac) if mac else b"")
                + _attr(IFLA_LINKINFO, _name(IFLA_INFO_KIND, "bridge")))
        self._do(f"creating bridge {name}", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
        self._index.pop(name, None)

    def delete_link(self, name: str) -> None:
        """Delete link `name`; a no-op if it is gone."""
        idx = self.index(name)
        if idx is not None:
            self._do(f"deleting {name}", RTM_DELLINK, 0,
                     _IFINFO.pack(socket.AF_UNSPEC, 0, idx, 0, 0), ok=(errno.ENODEV,))
            self._index.clear()  # a veth's peer goes too; ports of a bridge change

    def set_link(self, name: str, **attrs) -> None:
        """Set link attributes: up=bool, mac=str, master=name or None (nomaster)."""
        idx = self._require(name)
        body = b""
        if "mac" in attrs and attrs["mac"]:
            body += _mac(IFLA_ADDRESS, attrs["mac"])
        if "master" in attrs:
            body += _u32(IFLA_MASTER, self._require(attrs["master"]) if attrs["master"] else 0)
        flags = change = 0
        if "up" in attrs:
            change, flags = IFF_UP, IFF_UP if attrs["up"] else 0
        if body or change:
            names = {"mac": "address", "master": "master", "up": "state"}
            keys = sorted(names[k] for k in attrs if k in names and (k != "mac" or attrs["mac"]))
            self._do(f"setting {name} {keys}", RTM_NEWLINK, 0,
                     _IFINFO.pack(socket.AF_UNSPEC, 0, idx, flags, change) + body)

    def _require(self, name: str) -> int:
        idx = self.index(name)
        if idx is None:
            raise KernelError(f"interface {name!r} does not exist in namespace {self.ns!r}")
        return idx

    def netnsid_of(self, ns: str) -> int | None:
        """The id under which this namespace knows namespace `ns` (None if it has none)."""
        fd = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            replies = list(self._dump("reading netnsid", RTM_GETNSID,
                                      b"\0\0\0\0" + _u32(NETNSA_FD, fd), 0))
        finally:
            os.close(fd)
        for data, off, end in replies:
            nsid = _int(data, _attrs(data, off + 4, end).get(NETNSA_NSID), _S32)
            return None if nsid is None or nsid < 0 else nsid
        return None

    # -- addresses -------------------------------------------------------------------------
    def addresses(self) -> list[tuple[int, str]]:
        """Every IPv4 address as (interface index, "a.b.c.d/len")."""
        result = []
        for data, off, end in self._dump("listing addresses", RTM_GETADDR,
                                         _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)):
            family, length, _, _, index = _IFADDR.unpack_from(data, off)
            if family == socket.AF_INET:
                a = _attrs(data, off + 8, end)
                result.append((index, f"{_ipv4(data, a.get(IFA_ADDRESS) or a.get(IFA_LOCAL))}/{length}"))
        return result

    def _address(self, index: int, cidr: str) -> bytes:
        addr, length = cidr.split("/")
        return (_IFADDR.pack(socket.AF_INET, int(length), 0, RT_SCOPE_UNIVERSE, index)
                + _ip(IFA_LOCAL, addr) + _ip(IFA_ADDRESS, addr))

    def add_address(self, name: str, cidr: str) -> None:
        """Add `cidr` to `name` (no-op if present). Undo: del_address."""
        self._do(f"adding {cidr} to {name}", RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                 self._address(self._require(name), cidr), ok=(errno.EEXIST,))

    def del_address(self, name: str, cidr: str) -> None:
        """Remove `cidr` from `name` (no-op if absent)."""
        idx = self.index(name)
        if idx is None:
            return
        self._do(f"removing {cidr} from {name}", RTM_DELADDR, 0, self._address(idx, cidr),
                 ok=(errno.EADDRNOTAVAIL, errno.ENODEV))

    # -- routes ----------------------------------------------------------------------------
    def routes(self, static_only: bool = False) -> list[dict]:
        """IPv4 routes of the main table: dst ("default" or CIDR), gateway, dev (index), proto, src."""
        result = []
        for data, off, end in self._dump("listing routes", RTM_GETROUTE,
                                         _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
            family, dst_len, _, _, table, proto, _, _, _ = _RTMSG.unpack_from(data, off)
            a = _attrs(data, off + 12, end)
            if family != socket.AF_INET or (_int(data, a.get(RTA_TABLE)) or table) != RT_TABLE_MAIN:
                continue
            if static_only and proto == RT_PROTO_KERNEL:
                continue
            dst = _ipv4(data, a.get(RTA_DST))
            result.append({
                "dst": f"{dst}/{dst_len}" if dst else "default",
                "gateway": _ipv4(data, a.get(RTA_GATEWAY)),
                "dev": _int(data, a.get(RTA_OIF)),
                "proto": proto,
                "src": _ipv4(data, a.get(RTA_PREFSRC)),
            })
        return result

    @staticmethod
    def _route(dst: str, gateway: str | None, oif: int | None, proto: int, scope: int,
               kind: int) -> bytes:
        addr, length = ("0.0.0.0", 0) if dst == "default" else dst.split("/")
        body = _RTMSG.pack(socket.AF_INET, int(length), 0, 0, RT_TABLE_MAIN, proto, scope, kind, 0)
        if int(length):
            body += _ip(RTA_DST, addr)
        if gateway:
            body += _ip(RTA_GATEWAY, gateway)
        if oif:
            body += _u32(RTA_OIF, oif)
        return body

    def add_route(self, dst: str, gateway: str | None = None, dev: str | None = None) -> None:
        """Add a route (dst "default" or CIDR); no-op if the same route is there. Undo: del_route."""
        body = self._route(dst, gateway, self._require(dev) if dev else None, RT_PROTO_STATIC,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST)
        self._do(f"adding route {dst}", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body,
                 ok=(errno.EEXIST,))

    def del_route(self, dst: str, gateway: str | None = None, dev: int | None = None) -> None:
        """Delete a route (dev as an index); no-op if it is gone."""
        self._do(f"deleting route {dst}", RTM_DELROUTE, 0,
                 self._route(dst, gateway, dev, 0, RT_SCOPE_NOWHERE, 0), ok=(errno.ESRCH,))
