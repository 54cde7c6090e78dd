"""Paths: one packet followed across capture points, hop by hop, with what NAT rewrote.

Plain data, no root, no scapy. `follow(packets)` groups the sightings of each packet at every
point, in time order, and says what changed at each hop.

How one packet is recognised at every point: by the fields that routing and NAT leave alone.
NAT rewrites addresses, ports and the ICMP echo id (and checksums); routing lowers the TTL and
changes MACs. A packet's *key* (`headers(frame).key`, labkit.capture.headers) is made of what
stays: the IPv4 identification, protocol, ICMP type/code/sequence, TCP sequence/ack/flags, and
the payload bytes. Sightings with one key are cut into separate packets when a (point,
direction) repeats or when more than `gap` seconds pass (a retransmission or a repeated ARP
with the same bytes). Equal timestamps (the kernel hands one buffer from a bridge port up to
its bridge) are ordered port before bridge on the way in, bridge before port on the way out.

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

from dataclasses import dataclass

from ..errors import UnknownName

NAT_FIELDS = ("src", "dst", "sport", "dport", "icmp_id")


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
        if not self.hops:
            return "(empty path)"
        first = self.hops[0]
        summary = self.summary.removeprefix(f"{first.sport} > {first.dport} ")
        head = f"{self.proto} {first.endpoints()} {summary}"
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
    raise UnknownName("the packet is not among the packets given: pass one of them")


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
