"""What a capture saw while one thing happened, as packet paths whose text repeats exactly.

`Trace` prints one entry per distinct packet path, without what varies from run to run (ICMP
ids, TCP sequence numbers, timestamps): nbval compares these lines with the stored ones.
`describe(hop)` names a packet that way; `distinct(paths)` keeps the first path of each kind.
This module runs nothing: labkit.teach.notebook.traffic makes Traces from live captures."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_TCP_NAMES = {"S": "SYN", "SA": "SYN-ACK", "A": "ACK", "PA": "PSH-ACK", "FA": "FIN-ACK",
              "FPA": "FIN-PSH-ACK", "R": "RST", "RA": "RST-ACK"}


def describe(hop) -> str:
    """What a packet is, without what varies from run to run (ICMP id, TCP sequence numbers)."""
    info = hop.summary
    if hop.proto == "icmp":
        return re.sub(r" ?\bid=\d+", "", info)
    if hop.proto == "tcp":
        m = re.search(r"\[(\w*)\].*?len=(\d+)", info)
        if m:
            name = _TCP_NAMES.get(m.group(1), m.group(1))
            return name + (f" len={m.group(2)}" if m.group(2) != "0" else "")
    if hop.proto == "udp":
        return re.sub(r"^\d+ > \d+ ", "", info)
    return info


def _ends(hop) -> str:
    if hop.src is None or hop.proto == "arp":
        return f"{hop.src_mac} > {hop.dst_mac}"
    return hop.endpoints()


def _changes(hop) -> str:
    parts = [f"{c.field} {c.before} -> {c.after}" for c in hop.changes if c.field != "icmp_id"]
    return ("NAT: " + ", ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Trace:
    """What a capture saw while one thing happened: one entry per distinct packet path.

    `paths` are labkit.capture.packets Paths (first of each kind); `packets` every captured frame
    (write them with `trace.packets.write("x.pcapng")`); `points` the capture points."""
    action: str
    outcome: str                         # "answered", "NO ANSWER", or what a probe found
    points: tuple[str, ...]
    paths: tuple = ()
    packets: object = field(default=None, repr=False, compare=False)

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    @property
    def silent(self) -> list[str]:
        """Capture points where none of the shown packets was seen."""
        seen = {h.point for p in self.paths for h in p.hops}
        return [pt for pt in self.points if pt not in seen]

    def lines(self) -> list[str]:
        out = [f"{self.action}: {self.outcome}"]
        width = max([len(pt) for pt in self.points] + [5])
        for i, p in enumerate(self.paths, 1):
            out.append(f"{i}. {p.proto} {describe(p.hops[0])}")
            for h in p.hops:
                extra = _changes(h)
                out.append(f"     {h.point:<{width}}  {h.direction:<3}  {_ends(h)}"
                           + (f"   <- {extra}" if extra else ""))
        if not self.paths:
            out.append("(no packets of this lesson were seen)")
        if self.silent:
            out.append(f"nothing seen at: {', '.join(self.silent)}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def hops(self, index: int = 0) -> list:
        """The hops of path `index` (for exercises and assertions)."""
        return list(self.paths[index].hops)

    def find(self, proto: str | None = None, text: str = "") -> list:
        """Paths whose protocol is `proto` and whose description contains `text`."""
        return [p for p in self.paths if (proto is None or p.proto == proto)
                and text in describe(p.hops[0])]

    def show(self, text: bool = False) -> None:
        """Display the packet paths once, as a ladder diagram whose plain-text form is this
        trace's listing (what a terminal prints and nbval compares); `text=True` also shows
        the listing above the ladder."""
        from IPython.display import display
        if text:
            display(self)
        display(self.ladder())

    def ladder(self):
        """The paths as a ladder diagram: a labkit.draw.figure.Figure whose text is this
        trace's listing (a PNG in a notebook, the listing as its text/plain)."""
        from ...draw import ladder
        title = f"{self.action}: {self.outcome.lower()}"
        lay = ladder.layout(list(self.paths), points=list(self.points), title=title)
        return ladder.figure(lay, listing=str(self))


def _signature(path) -> tuple:
    return tuple((h.point, h.direction, h.proto, _ends(h), describe(h)) for h in path.hops)


def distinct(paths, keep: Callable | None = None) -> list:
    """The first path of each kind (same hops, same packet description), in time order;
    `keep(path)` selects the lesson's packets."""
    out, seen = [], set()
    for p in paths:
        if not p.hops or (keep is not None and not keep(p)):
            continue
        sig = _signature(p)
        if sig not in seen:
            seen.add(sig)
            out.append(p)
    return out
