"""The path of a packet: decode a frame's headers, then follow one packet across capture points.

Plain data, no root, no scapy: `headers(frame)` decodes Ethernet / ARP / IPv4 / IPv6 / ICMP /
TCP / UDP with `struct`, fast enough for 100,000 frames. `follow(packets)` groups the sightings
of each packet at every capture point, in time order, and says what changed at each hop.

How one packet is recognised at every point: by the fields that routing and NAT leave alone.
NAT rewrites addresses, ports and the ICMP echo id (and checksums); routing lowers the TTL and
changes MACs. A packet's *key* is made of what stays: the IPv4 identification, protocol, ICMP
type/code/sequence, TCP sequence/ack/flags, and the payload bytes. Sightings with one key are
cut into separate packets when a (point, direction) repeats or when more than `gap` seconds
pass (a retransmission or a repeated ARP with the same bytes).

Shape of a path, for diagrams (a ladder of hops):

    Path(hops=(Hop(point="netns0:ceth0", time=..., offset=0.0, direction="out", proto="icmp",
                   src="172.18.0.10", dst="203.0.113.80", sport=None, dport=None, ttl=64,
                   changes=(), summary="echo-request id=7 seq=1"),
               Hop(point="host:veth0", ..., direction="in", ...),
               Hop(point="host:br0", ...),
               Hop(point="host:ens18", ..., src="10.0.2.15",
                   changes=(Change("src", "172.18.0.10", "10.0.2.15"),)),
               Hop(point="world:wan0", ...)),
         proto="icmp", summary="...")

`changes` lists only rewrites of src, dst, sport, dport and ICMP id (NAT); TTL and MACs are
kept on each hop (`ttl`, `src_mac`, `dst_mac`) for whoever wants to show routing.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

ETH_IPV4, ETH_ARP, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8
IPPROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 2: "igmp", 47: "gre", 132: "sctp"}
ICMP_TYPES = {0: "echo-reply", 3: "unreachable", 5: "redirect", 8: "echo-request",
              11: "time-exceeded"}
ICMP6_TYPES = {128: "echo-request", 129: "echo-reply", 133: "router-solicitation",
               134: "router-advertisement", 135: "neighbor-solicitation",
               136: "neighbor-advertisement", 1: "unreachable", 3: "time-exceeded"}
TCP_FLAGS = "FSRPAUEC"
NAT_FIELDS = ("src", "dst", "sport", "dport", "icmp_id")


def _ip4(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@dataclass(frozen=True)
class Headers:
    """What a frame says, decoded: addresses, ports, protocol and a one-line `info`.

    `proto` is "arp", "icmp", "tcp", "udp", "icmp6", another IP protocol's name or number,
    "ipv4"/"ipv6" when truncated, or "0x...." for other ethertypes. Fields that the frame
    lacks are None. `key` identifies the packet across NAT and routing (module docstring).
    """
    src_mac: str | None
    dst_mac: str | None
    ethertype: int | None
    proto: str
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    ttl: int | None = None
    ip_id: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    tcp_flags: str | None = None
    length: int = 0
    info: str = ""
    key: tuple = field(default=(), repr=False, compare=False)

    def matches(self, *, src=None, dst=None, host=None, proto=None, port=None,
                sport=None, dport=None) -> bool:
        """True if every given criterion holds (host: src or dst; port: sport or dport)."""
        if proto is not None and self.proto != str(proto).lower():
            return False
        if src is not None and self.src != str(src):
            return False
        if dst is not None and self.dst != str(dst):
            return False
        if host is not None and str(host) not in (self.src, self.dst):
            return False
        if sport is not None and self.sport != int(sport):
            return False
        if dport is not None and self.dport != int(dport):
            return False
        if port is not None and int(port) not in (self.sport, self.dport):
            return False
        return True


def headers(frame: bytes) -> Headers:
    """Decode an Ethernet frame's headers (never raises: odd frames get proto "0x....")."""
    if len(frame) < 14:
        return Headers(None, None, None, "short", length=len(frame), info="truncated frame",
                       key=("raw", frame))
    dst_mac, src_mac = _mac(frame[0:6]), _mac(frame[6:12])
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    while ethertype in (ETH_VLAN, ETH_QINQ) and len(frame) >= off + 4:
        ethertype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    base = dict(src_mac=src_mac, dst_mac=dst_mac, ethertype=ethertype, length=len(frame))
    try:
        if ethertype == ETH_IPV4:
            return _ipv4(frame, off, base)
        if ethertype == ETH_ARP:
            return _arp(frame, off, base)
        if ethertype == ETH_IPV6:
            return _ipv6(frame, off, base)
    except (struct.error, ValueError, OSError):   # truncated: fall through to raw
        pass
    name = f"0x{ethertype:04x}"
    return Headers(proto=name, info=f"ethertype {name}", key=("raw", frame[off:]), **base)


def _arp(frame: bytes, off: int, base: dict) -> Headers:
    op = struct.unpack_from("!H", frame, off + 6)[0]
    sha, spa = frame[off + 8:off + 14], frame[off + 14:off + 18]
    tpa = frame[off + 24:off + 28]
    if len(tpa) < 4:
        raise struct.error("short arp")
    src, dst = _ip4(spa), _ip4(tpa)
    if op == 1:
        info = f"who-has {dst} tell {src}"
    elif op == 2:
        info = f"{src} is-at {_mac(sha)}"
    else:
        info = f"arp op {op}"
    return Headers(proto="arp", src=src, dst=dst, info=info,
                   key=("arp", frame[off:off + 28]), **base)


def _l4(proto_num: int, frame: bytes, off: int, end: int, six: bool) -> tuple[dict, str, tuple]:
    """Ports/ICMP fields, info text and the NAT-invariant part of the key."""
    name = IPPROTO.get(proto_num, str(proto_num))
    payload = frame[off:end]
    if proto_num in (6, 17) and len(payload) >= 4:
        sport, dport = struct.unpack_from("!HH", payload, 0)
        f = dict(sport=sport, dport=dport)
        if proto_num == 17:
            return f, f"{sport} > {dport} len={max(len(payload) - 8, 0)}", ("udp", payload[4:6], payload[8:])
        if len(payload) >= 14:
            seq, ack = struct.unpack_from("!II", payload, 4)
            hlen = (payload[12] >> 4) * 4
            bits = payload[13]
            flags = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i))
            f["tcp_flags"] = flags
            data = payload[hlen:]
            info = f"{sport} > {dport} [{flags}] seq={seq}" + (f" ack={ack}" if bits & 16 else "")
            info += f" len={len(data)}"
            return f, info, ("tcp", seq, ack, bits, data)
        return f, f"{sport} > {dport}", (name, payload[4:])
    if proto_num in (1, 58) and len(payload) >= 4:
        t, code = payload[0], payload[1]
        f = dict(icmp_type=t, icmp_code=code)
        tname = (ICMP6_TYPES if six else ICMP_TYPES).get(t, f"type {t}")
        echo = (128, 129) if six else (0, 8)
        if t in echo and len(payload) >= 8:
            ident, seq = struct.unpack_from("!HH", payload, 4)
            f.update(icmp_id=ident, icmp_seq=seq)
            return f, f"{tname} id={ident} seq={seq}", (name, t, code, seq, payload[8:])
        return f, tname + (f" code {code}" if code else ""), (name, t, code, payload[8:])
    return {}, name, (name, payload)


def _ipv4(frame: bytes, off: int, base: dict) -> Headers:
    vihl, _tos, total, ip_id, _frag, ttl, proto = struct.unpack_from("!BBHHHBB", frame, off)
    ihl = (vihl & 15) * 4
    src = _ip4(frame[off + 12:off + 16])
    dst = _ip4(frame[off + 16:off + 20])
    end = min(len(frame), off + total) if total else len(frame)
    fields, info, inv = _l4(proto, frame, off + ihl, end, False)
    return Headers(proto=IPPROTO.get(proto, str(proto)), src=src, dst=dst, ttl=ttl, ip_id=ip_id,
                   info=info, key=("ip", proto, ip_id, inv), **fields, **base)


def _ipv6(frame: bytes, off: int, base: dict) -> Headers:
    plen, nxt, hop = struct.unpack_from("!HBB", frame, off + 4)
    src = _ip6(frame[off + 8:off + 24])
    dst = _ip6(frame[off + 24:off + 40])
    end = min(len(frame), off + 40 + plen)
    fields, info, inv = _l4(nxt, frame, off + 40, end, True)
    return Headers(proto=IPPROTO.get(nxt, str(nxt)), src=src, dst=dst, ttl=hop, info=info,
                   key=("ip6", nxt, inv), **fields, **base)


@dataclass(frozen=True)
class Change:
    """One field rewritten at a hop (NAT): `field` is src, dst, sport, dport or icmp_id."""
    field: str
    before: str | int | None
    after: str | int | None

    def __str__(self) -> str:
        return f"{self.field} {self.before} -> {self.after}"


@dataclass(frozen=True)
class Hop:
    """One sighting of a packet at one capture point.

    `time` is the kernel timestamp (seconds since the epoch), `offset` the seconds since the
    path's first hop; `direction` is "in" or "out" as the point's interface saw it; `changes`
    are the NAT rewrites since the previous hop (empty at the first).
    """
    point: str
    time: float
    offset: float
    direction: str
    proto: str
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    ttl: int | None
    src_mac: str | None
    dst_mac: str | None
    changes: tuple[Change, ...]
    summary: str

    def endpoints(self) -> str:
        """"src:sport > dst:dport" (ports omitted where the protocol has none)."""
        s = self.src if self.sport is None else f"{self.src}:{self.sport}"
        d = self.dst if self.dport is None else f"{self.dst}:{self.dport}"
        return f"{s} > {d}"


@dataclass(frozen=True)
class Path:
    """One packet followed across capture points, hops in time order."""
    hops: tuple[Hop, ...]
    proto: str
    summary: str

    @property
    def points(self) -> tuple[str, ...]:
        """The capture points, in the order the packet crossed them."""
        return tuple(h.point for h in self.hops)

    @property
    def changes(self) -> list[tuple[str, Change]]:
        """Every rewrite as (point where it was first seen, change)."""
        return [(h.point, c) for h in self.hops for c in h.changes]

    def __str__(self) -> str:
        head = f"{self.proto} {self.hops[0].endpoints()} {self.summary}" if self.hops else "(empty)"
        lines = [head]
        for h in self.hops:
            what = "; ".join(str(c) for c in h.changes)
            lines.append(f"  {h.offset * 1e6:9.1f} us  {h.point:<16} {h.direction:<3} "
                         f"{h.endpoints()}" + (f"   [{what}]" if what else ""))
        return "\n".join(lines)


def _rank(direction: str, upper: bool) -> int:
    """Tie-break for equal timestamps: a frame enters a port before its bridge, and leaves a
    bridge before its port (the kernel passes one buffer up or down a stack of devices)."""
    if direction == "in":
        return 1 if upper else 0
    return 0 if upper else 1


def sort_key(time_ns: int, direction: str, upper: bool = False, seq: int = 0) -> tuple:
    """Sort key that merges capture points in time order (see `_rank` for ties)."""
    return (time_ns, _rank(direction, upper), seq)


def follow(packets, gap: float = 1.0, **flow) -> list[Path]:
    """Group `packets` into paths, one per packet, in the time order of their first hop.

    `packets`: objects with time_ns, point, direction, headers (and optionally `upper`: the
    point is a bridge or other upper device), such as a capture's packets. With flow criteria
    (src, dst, host, proto, port, sport, dport, as `Headers.matches`) keep only the paths where
    at least one hop matches, so a filter on a container's address also finds the hops after
    NAT rewrote it.
    """
    found = sorted(_groups(packets, gap), key=lambda ps: ps[0].time_ns)
    if flow:
        found = [ps for ps in found if any(p.headers.matches(**flow) for p in ps)]
    return [_path(ps) for ps in found]


def path_of(packets, packet, gap: float = 1.0) -> Path:
    """The path of one `packet` (one of `packets`) across every point where it was seen."""
    for ps in _groups(packets, gap):
        if any(p is packet for p in ps):
            return _path(ps)
    raise LookupError("the packet is not among the packets given")


def _groups(packets, gap: float) -> list[list]:
    """Sightings grouped by key, cut where a (point, direction) repeats or after `gap` s."""
    by_key: dict[tuple, list] = {}
    for p in sorted(packets, key=lambda p: sort_key(p.time_ns, p.direction,
                                                     getattr(p, "upper", False))):
        by_key.setdefault(p.headers.key, []).append(p)
    limit = int(gap * 1e9)
    groups = []
    for sightings in by_key.values():
        current, seen = [], set()
        for p in sightings:
            where = (p.point, p.direction)
            if current and (where in seen or p.time_ns - current[-1].time_ns > limit):
                groups.append(current)
                current, seen = [], set()
            current.append(p)
            seen.add(where)
        if current:
            groups.append(current)
    return groups


def _path(sightings) -> Path:
    hops = []
    t0 = sightings[0].time_ns
    prev = None
    for p in sightings:
        h = p.headers
        changes = ()
        if prev is not None:
            changes = tuple(Change(f, getattr(prev, f), getattr(h, f)) for f in NAT_FIELDS
                            if getattr(prev, f) != getattr(h, f))
        hops.append(Hop(point=p.point, time=p.time_ns / 1e9, offset=(p.time_ns - t0) / 1e9,
                        direction=p.direction, proto=h.proto, src=h.src, dst=h.dst,
                        sport=h.sport, dport=h.dport, ttl=h.ttl, src_mac=h.src_mac,
                        dst_mac=h.dst_mac, changes=changes, summary=h.info))
        prev = h
    first = sightings[0].headers
    return Path(tuple(hops), first.proto, first.info)
