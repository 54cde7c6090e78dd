"""Captured packets: each frame seen at one point, and a capture's results merged across points.

Plain data, no root, no scapy until asked. `Packet` is one frame seen at one point; `Packets`
merges the points in time order with each point's counts (a table in a terminal and in
Jupyter, flow filters, paths across points (labkit.capture.paths), pcap out).
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from . import pcap
from ..errors import BadValue, UnknownName
from .headers import Headers, headers
from .paths import Change, Hop, Path, follow, path_of, sort_key

__all__ = ["Packet", "Packets", "PointStats", "ends", "Change", "Hop", "Path", "follow",
           "path_of", "sort_key", "Headers", "headers"]


@dataclass(slots=True)
class Packet:
    """One frame seen at one point: kernel timestamp (ns since the epoch), direction as the
    interface saw it ("in"/"out"; `pkttype` has the kernel's finer word), the bytes kept
    (up to the snap length) and the length on the wire."""
    time_ns: int
    point: str
    direction: str
    pkttype: str
    data: bytes = field(repr=False)
    wirelen: int = 0
    upper: bool = False
    seq: int = 0
    _headers: Headers | None = field(default=None, repr=False, compare=False)

    @property
    def time(self) -> float:
        """Kernel timestamp in seconds since the epoch."""
        return self.time_ns / 1e9

    @property
    def headers(self) -> Headers:
        """Decoded headers (addresses, ports, protocol, info), computed once."""
        if self._headers is None:
            self._headers = headers(self.data)
        return self._headers

    def scapy(self):
        """The frame dissected by scapy (imported now, not before)."""
        from scapy.layers.l2 import Ether
        return Ether(self.data)

    def __str__(self) -> str:
        h = self.headers
        return f"{self.point} {self.direction} {h.proto} {ends(h)} {h.info}"


def ends(h: Headers) -> str:
    """"src:sport > dst:dport" of a frame (MACs when it has no IP addresses)."""
    s = h.src if h.sport is None else f"{h.src}:{h.sport}"
    d = h.dst if h.dport is None else f"{h.dst}:{h.dport}"
    return f"{s} > {d}" if h.src else f"{h.src_mac} > {h.dst_mac}"


@dataclass(frozen=True)
class PointStats:
    """Counts at one point: frames kept, and the kernel's own PACKET_STATISTICS: frames that
    passed the filter (`seen`, drops included) and frames it `dropped` (receive buffer full)."""
    point: str
    captured: int
    seen: int
    dropped: int
    gone: bool = False        # the interface went away during the capture

    def __str__(self) -> str:
        text = f"{self.point}: {self.captured} captured, {self.seen} seen by the kernel, " \
               f"{self.dropped} dropped"
        if self.gone:
            text += " (the interface went away during the capture)"
        if self.dropped:
            text += " (LOSS: receive buffer full; raise buffer_size or narrow the filter)"
        elif self.captured < self.seen:
            text += f" ({self.seen - self.captured} not kept: count reached)"
        return text


class Packets(Sequence):
    """Captured packets merged in time order, with each point's counts (`stats`).

    A table when printed or shown in Jupyter; `filter()` selects a flow; `paths()` follows
    each packet across the points; `write()` saves a pcap/pcapng file.
    """

    def __init__(self, packets: Iterable[Packet], stats: Iterable[PointStats] = ()):
        self._items = sorted(packets, key=lambda p: sort_key(p.time_ns, p.direction, p.upper, p.seq))
        self.stats = {s.point: s for s in stats}

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Packets(self._items[i], self.stats.values())
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Frames the kernel dropped, summed over the points."""
        return sum(s.dropped for s in self.stats.values())

    def filter(self, *, point=None, direction=None, src=None, dst=None, host=None, proto=None,
               port=None, sport=None, dport=None,
               where: Callable[[Packet], bool] | None = None) -> Packets:
        """The packets that match every given criterion (host: src or dst; port: either port;
        point: a label or a list of labels; where: any predicate on a Packet)."""
        points = {point} if isinstance(point, str) else set(point) if point else None
        flow = dict(src=src, dst=dst, host=host, proto=proto, port=port, sport=sport, dport=dport)
        flow = {k: v for k, v in flow.items() if v is not None}
        kept = [p for p in self._items
                if (points is None or p.point in points)
                and (direction is None or p.direction == direction)
                and (not flow or p.headers.matches(**flow))
                and (where is None or where(p))]
        return Packets(kept, self.stats.values())

    def at(self, point: str) -> Packets:
        """The packets seen at `point`."""
        return self.filter(point=point)

    def paths(self, gap: float = 1.0, **flow) -> list[Path]:
        """Each packet followed across the points (see labkit.capture.paths); flow criteria as in
        `filter` keep the paths where any hop matches, before or after NAT."""
        return follow(self._items, gap, **flow)

    def path(self, packet: Packet | int) -> Path:
        """The path of one packet (a Packet or its index here)."""
        if isinstance(packet, int):
            if not -len(self._items) <= packet < len(self._items):
                raise UnknownName(f"packet {packet} is not among the {len(self._items)} packets "
                                  f"here: give an index from 0 to {len(self._items) - 1}")
            packet = self._items[packet]
        return path_of(self._items, packet)

    def write(self, path: str, per_point: bool = False, format: str | None = None) -> list[str]:
        """Save as pcap (classic, ns timestamps) or pcapng (keeps points and directions), by
        `format` or the file's suffix; per_point writes one file per point (NAME-POINT.EXT).
        Returns the paths written."""
        fmt = format or ("pcapng" if path.endswith(".pcapng") else "pcap")
        if fmt not in ("pcap", "pcapng"):
            raise BadValue(f"capture file format {fmt!r} is unknown: use pcap or pcapng")
        writer = pcap.write_pcapng if fmt == "pcapng" else pcap.write_pcap
        groups = {path: self._items}
        if per_point:
            stem, ext = os.path.splitext(path)
            groups = {f"{stem}-{label.replace(':', '-')}{ext or '.' + fmt}": self.at(label)._items
                      for label in self.points}
        for target, items in groups.items():
            try:
                writer(target, (pcap.Record(p.time_ns, p.data, p.wirelen, p.point, p.direction)
                                for p in items))
            except OSError as e:
                raise BadValue(f"cannot write {target}: {e.strerror}; choose a writable path") from None
        return list(groups)

    @property
    def points(self) -> list[str]:
        """Point labels: those with counts, then any others seen, in order."""
        labels = list(self.stats)
        labels += [p.point for p in self._items if p.point not in labels]
        return list(dict.fromkeys(labels))

    def to_scapy(self):
        """A scapy PacketList of the frames (imports scapy)."""
        from scapy.plist import PacketList
        pkts = []
        for p in self._items:
            s = p.scapy()
            s.time = p.time_ns / 1e9
            s.sniffed_on = p.point
            pkts.append(s)
        return PacketList(pkts, name="labkit")

    def rows(self) -> list[tuple[str, ...]]:
        """Table rows: (#, time since the first packet in ms, point, dir, proto, src, dst, info)."""
        t0 = self._items[0].time_ns if self._items else 0
        rows = []
        for i, p in enumerate(self._items):
            h = p.headers
            src = h.src if h.sport is None else f"{h.src}:{h.sport}"
            dst = h.dst if h.dport is None else f"{h.dst}:{h.dport}"
            if h.src is None:
                src, dst = h.src_mac or "", h.dst_mac or ""
            rows.append((str(i + 1), f"{(p.time_ns - t0) / 1e6:.3f}", p.point, p.direction,
                         h.proto, src, dst, h.info))
        return rows

    HEADER = ("#", "ms", "point", "dir", "proto", "source", "destination", "info")

    def summary(self) -> str:
        """One line per point with its counts (always shown: loss is never hidden)."""
        head = f"{len(self)} packets at {len(self.points)} point(s)"
        if self.dropped:
            head += f"; {self.dropped} DROPPED by the kernel"
        return "\n".join([head] + [f"  {s}" for s in self.stats.values()])

    def table(self, limit: int | None = 100) -> str:
        """The packets as a fixed-width text table (at most `limit` rows), then the counts."""
        rows = self.rows()
        shown = rows if limit is None else rows[:limit]
        widths = [max([len(h)] + [len(r[i]) for r in shown]) for i, h in enumerate(self.HEADER)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                 for r in [self.HEADER, *shown]]
        if len(rows) > len(shown):
            lines.append(f"... {len(rows) - len(shown)} more")
        return "\n".join(lines + [self.summary()])

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Packets: {len(self)} packets, points {', '.join(self.points)}, " \
               f"{self.dropped} dropped>"

    def _repr_html_(self, limit: int = 200) -> str:
        rows = self.rows()
        esc = html.escape
        out = ['<table class="labkit-capture"><thead><tr>']
        out += [f"<th>{esc(h)}</th>" for h in self.HEADER] + ["</tr></thead><tbody>"]
        for r in rows[:limit]:
            out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
        out.append("</tbody></table>")
        if len(rows) > limit:
            out.append(f"<p>... {len(rows) - limit} more</p>")
        style = ' style="color:#b00;font-weight:bold"' if self.dropped else ""
        out.append(f"<pre{style}>{esc(self.summary())}</pre>")
        return "".join(out)
