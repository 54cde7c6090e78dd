"""Packet diagrams: captured packets as a ladder (sequence chart) across capture points.

    layout(what, points=None, limit=LIMIT) -> Ladder    plain data: columns, rows, arrows, dots
    figure(ladder_or_what, listing=None) -> Figure   labkit.draw.figure.Figure: .render("png"|
                                            "svg"|"text"), matplotlib imported lazily (Agg)
    ladder(what, points=None, ...) -> Figure    both at once: what a notebook shows

A Ladder is the one model of a ladder and a Figure its one display: a trace's ladder
(labkit.teach.notebook.trace) is `figure(layout, listing=<the trace's listing>)`.

`what` is a capture's merged packets (`Packets`, or a `Capture`), one labkit.capture.packets
`Path` or a list of them. One column per capture point, ordered the way the longest path crossed
them (containers on the left, the world on the right); one row per sighting (hop) in time order,
under a header row per packet (its time since the first packet: the only time shown); one arrow
per hop to the next. A hop where NAT rewrote the packet (its `changes`) is highlighted: an
orange arrow, dot and row, and under that row, in the text column (never on an arrow), a label
such as "POSTROUTING: src 172.18.0.10 -> 10.0.2.15" per rewrite, naming the hook that made it (a
destination is rewritten on PREROUTING, a source on POSTROUTING: DNAT and SNAT, or conntrack
undoing them on a reply). With `macs` (automatic for ARP, and for frames crossing a bridge when
no NAT is drawn) each hop shows its MAC addresses and a hop where they changed is marked "MACs
rewritten": a bridge forwards a frame as it is; a router writes new ones. Columns where nothing
was seen stay in, marked "0 seen": that is where a packet did not go. A column is headed by its
namespace and its interface on two lines, so that it is narrow: the ladder is drawn for a page
(every text at FONT, 8 pt; see `fits_a4`). Geometry in inches, origin top left, y downward.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..model import plan
from ..errors import BadValue
from .figure import (A4_MIN_FONT, CHAR, EDGE, FILL, FONT, INK, LINE, MARGIN, PAD, SAME,
                     TITLE_CHAR, TOP, WARN, Figure, canvas)

LIMIT = 30                         # packets drawn; the rest are counted
ROW, HEAD_ROW, GROUP_GAP = 0.22, 0.27, 0.08   # inches: a page holds a ladder of 4 packets over 5 points
COL_MIN, COL_GAP = 0.8, 0.2
NAT_INK, NAT_FILL = "#d0650a", "#fff0e0"
MAC_INK = "#7a52b3"                # as a bridge port is drawn
NAT_INDENT = 4                     # characters: a rewrite's label, under its hop's words
A4_LANDSCAPE_WIDTH = 10.66         # inches: an A4 page's text, turned (277 mm; labkit.teach.printed.page)


@dataclass(frozen=True)
class Column:
    """A capture point: its label ("host:ens18"), namespace role, x of its lifeline."""
    point: str
    role: str
    x: float
    seen: int                      # hops drawn at this point (0: "nothing seen")


@dataclass(frozen=True)
class Row:
    """One text row at height y: a packet's header ("packet"), one sighting ("hop"), or the
    rewrite NAT made at the hop above ("nat", its words in `nat`)."""
    kind: str
    y: float
    text: str
    path: int
    nat: str = ""                  # the rewrite at this hop, e.g. "src 172.18.0.10 -> 10.0.2.15"
    macs: str = ""                 # "SRC_MAC > DST_MAC" where the ladder shows MACs
    mac_changed: bool = False      # ... and they differ from the previous hop's (routed)


@dataclass(frozen=True)
class Dot:
    """Where one hop sits: a column's lifeline at a row."""
    x: float
    y: float
    point: str
    direction: str
    path: int
    nat: str = ""


@dataclass(frozen=True)
class Arrow:
    """A packet moving from one hop to the next; `nat` labels a rewrite on the way."""
    start: tuple[float, float]
    end: tuple[float, float]
    path: int
    nat: str = ""


@dataclass(frozen=True)
class Ladder:
    """A whole packet diagram as data."""
    title: str
    width: float
    height: float
    text_x: float                  # left edge of the row texts
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    dots: tuple[Dot, ...]
    arrows: tuple[Arrow, ...]
    top: float                     # where lifelines start (under the column headers)
    hidden: int = 0                # packets not drawn (over the limit)
    macs: bool = False             # hops show their MAC addresses

    def column(self, point: str) -> Column | None:
        return next((c for c in self.columns if c.point == point), None)


def paths_of(what, **flow) -> tuple[list, list[str]]:
    """(paths, every capture point) from Packets, a Capture, a Path or a list of Paths."""
    if hasattr(what, "packets") and not hasattr(what, "paths"):
        what = what.packets                         # a Capture
    if hasattr(what, "paths") and callable(what.paths):
        return list(what.paths(**flow)), list(getattr(what, "points", []))
    if hasattr(what, "hops"):
        return [what], []
    try:
        paths = list(what)
    except TypeError:
        raise BadValue(f"cannot draw {type(what).__name__}: give captured packets "
                       f"(cap.packets), a Capture, or paths (packets.paths())") from None
    if not all(hasattr(p, "hops") for p in paths):
        raise BadValue("cannot draw these: give captured packets (cap.packets), a Capture, "
                       "or paths (packets.paths())")
    return paths, []


def role_of(point: str) -> str:
    """Namespace role of a point label: its namespace as written ("netns0:ceth0" -> "netns0";
    a role of one's own may hold "-": "my-router:eth0" -> "my-router"), less the lab's prefix
    where the label names the kernel namespace of a seed role ("t1-netns0:ceth0" -> "netns0")."""
    ns = point.split(":", 1)[0]
    lab, dash, rest = ns.partition("-")
    if dash and len(lab) <= 6 and set(lab) <= set("abcdefghijklmnopqrstuvwxyz0123456789") and (
            rest in ("host", "world") or plan.container_index(rest) is not None):
        return rest
    return ns


def _rank(point: str) -> tuple:
    role, iface = role_of(point), point.split(":", 1)[-1]
    k = plan.container_index(role)
    side = {"host": 1, "world": 2}.get(role, 0)
    within = 0 if iface.startswith("veth") else 1 if iface.startswith("br") else 2
    return (side, k if k is not None else 0, within if side == 1 else 0, point)


def order(paths, points=()) -> list[str]:
    """Columns: the longest path's points (outward: containers first), the rest by rank."""
    cols: list[str] = []
    if paths:
        longest = max(paths, key=lambda p: len(set(p.points)))
        cols = list(dict.fromkeys(longest.points))
        if _rank(cols[0]) > _rank(cols[-1]):
            cols.reverse()
    extra = list(dict.fromkeys([*points, *(h.point for p in paths for h in p.hops)]))
    for point in extra:
        if point in cols:
            continue
        at = next((i for i, c in enumerate(cols) if _rank(c) > _rank(point)), len(cols))
        cols.insert(at, point)
    return cols


def _ends(h) -> str:
    if h.src is None:
        return f"{h.src_mac} > {h.dst_mac}"
    return h.endpoints()


def nat_label(prev, hop) -> str:
    """What NAT rewrote between two hops, and on which hook: "POSTROUTING: src 172.18.0.10 ->
    10.0.2.15" ("" if nothing). A destination is rewritten on PREROUTING (DNAT, or conntrack
    undoing a SNAT on a reply), a source on POSTROUTING; an ICMP id goes with the address."""
    fields = {c.field for c in hop.changes}
    parts = []
    for side, port, hook in (("dst", "dport", "PREROUTING"), ("src", "sport", "POSTROUTING")):
        if side in fields or port in fields:
            def end(h):
                addr, p = getattr(h, side), getattr(h, port)
                return addr if p is None else f"{addr}:{p}"
            words = f"{side} {end(prev)} -> {end(hop)}"
            if "icmp_id" in fields and not parts:
                (c,) = [c for c in hop.changes if c.field == "icmp_id"]
                words += f", id {c.before} -> {c.after}"
            parts.append(f"{hook}: {words}")
    if "icmp_id" in fields and not parts:
        (c,) = [c for c in hop.changes if c.field == "icmp_id"]
        parts.append(f"POSTROUTING: id {c.before} -> {c.after}")
    return "; ".join(parts)


def is_bridge(point: str) -> bool:
    """True for a bridge's capture point ("host:br0"): labkit names its bridges br*."""
    return point.split(":", 1)[-1].startswith("br")


def shows_macs(paths, columns) -> bool:
    """Whether a ladder shows MACs by itself: for ARP, and for frames crossing a bridge when
    no NAT is drawn (then the lesson is the addresses NAT rewrites, not the MACs)."""
    if any(p.proto == "arp" for p in paths):
        return True
    return any(is_bridge(c) for c in columns) and not any(h.changes for p in paths for h in p.hops)


def _when(seconds: float) -> str:
    return f"+{seconds * 1e3:.3f} ms" if seconds >= 1e-3 else f"+{seconds * 1e6:.1f} us"


def layout(what, points=None, limit: int = LIMIT, title: str | None = None,
           macs: bool | None = None, **flow) -> Ladder:
    """Lay out packets as a ladder; `points` fixes the columns' order, `limit` the packets drawn,
    `macs` whether hops show MAC addresses (None: `shows_macs`).

    Flow criteria (proto=, host=, port=, ...) select packets as `Packets.paths` does."""
    paths, captured = paths_of(what, **flow)
    hidden = max(len(paths) - limit, 0)
    paths = paths[:limit]
    cols = list(points) if points else order(paths, captured)
    cols += [h.point for p in paths for h in p.hops if h.point not in cols]
    cols = list(dict.fromkeys(cols))
    t0 = min((p.hops[0].time for p in paths if p.hops), default=0.0)
    macs = shows_macs(paths, cols) if macs is None else bool(macs)
    ends_w = max([len(_ends(h)) for p in paths for h in p.hops] + [0])

    rows, texts, heads = [], [], []
    for i, p in enumerate(paths):
        if not p.hops:
            continue
        head = f"#{i + 1}  {_when(p.hops[0].time - t0)}  {p.proto}  {p.summary}".rstrip()
        heads.append(head)                          # no dot on its row: it may run over the lanes
        rows.append(("packet", head, i, "", None))
        prev = None
        for h in p.hops:
            nat = nat_label(prev, h) if prev is not None and h.changes else ""
            pair = f"{h.src_mac} > {h.dst_mac}" if macs else ""
            text = f"  {_ends(h):<{ends_w}}  {pair}" if macs else f"  {_ends(h)}"   # no time: it teaches nothing here
            texts.append(text)
            moved = bool(macs and prev is not None
                         and (prev.src_mac, prev.dst_mac) != (h.src_mac, h.dst_mac))
            rows.append(("hop", text, i, nat, h, pair, moved))
            for part in nat.split("; ") if nat else ():     # a label per hook, under the hop
                rows.append(("nat", f"{'':{NAT_INDENT}}{part}", i, part, None))
                texts.append(rows[-1][1] + "  ")                # and room for its box
            prev = h
    text_w = max([len(t) for t in texts] + [24]) * CHAR
    text_x = MARGIN
    col_w = max([COL_MIN] + [(len(word) + 1) * CHAR + 2 * PAD for c in cols for word in header(c)])
    x0 = text_x + text_w + COL_GAP + col_w / 2
    xs = {c: round(x0 + k * (col_w + COL_GAP), 3) for k, c in enumerate(cols)}
    top = TOP + 3 * LINE + 2 * PAD                  # under the column headers
    y = top + 0.15

    out_rows, dots, arrows, last = [], [], [], {}
    seen = dict.fromkeys(cols, 0)
    for kind, text, i, nat, h, *mac in rows:
        if kind == "packet":
            y += GROUP_GAP if out_rows else 0
            out_rows.append(Row(kind, round(y, 3), text, i))
            y += HEAD_ROW
            continue
        out_rows.append(Row(kind, round(y, 3), text, i, nat, *mac))
        if kind == "nat":
            y += ROW
            continue
        dot = Dot(xs[h.point], round(y, 3), h.point, h.direction, i, nat)
        dots.append(dot)
        seen[h.point] += 1
        if i in last:
            arrows.append(Arrow((last[i].x, last[i].y), (dot.x, dot.y), i, nat))
        last[i] = dot
        y += ROW
    if hidden:
        out_rows.append(Row("more", round(y + GROUP_GAP, 3),
                            f"... {hidden} more packets not drawn (raise limit= to see them)", -1))
        y += GROUP_GAP + ROW
    if not paths:
        out_rows.append(Row("more", round(y, 3), "no packets to draw", -1))
        y += ROW
    columns = tuple(Column(c, role_of(c), round(xs[c], 3), seen[c]) for c in cols)
    if title is None:
        n = len(paths) + hidden
        title = f"{n} packet{'s' if n != 1 else ''} at {len(cols)} capture point" \
                f"{'s' if len(cols) != 1 else ''}"
    right = max([x + col_w / 2 for x in xs.values()] + [text_x + text_w]
                + [text_x + len(h) * CHAR for h in heads])
    width = max(right + MARGIN, len(title) * TITLE_CHAR + 2 * MARGIN)
    return Ladder(title, round(width, 3), round(y + MARGIN, 3), text_x, columns,
                  tuple(out_rows), tuple(dots), tuple(arrows), round(top, 3), hidden, macs)


def header(point: str) -> tuple[str, str]:
    """A column's heading, on two lines: its namespace, its interface ("host:br0" -> host, br0)."""
    ns, _, iface = point.rpartition(":")
    return (ns, iface) if ns else (point, "")


def fits_a4(lad: Ladder) -> bool:
    """True if the ladder's text prints at A4_MIN_FONT or more on an A4 page, upright or
    turned (every text is FONT: drawn no wider than FONT / A4_MIN_FONT of the page)."""
    return lad.width <= A4_LANDSCAPE_WIDTH * FONT / A4_MIN_FONT


def _figure(lad: Ladder):
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

    fig, ax = canvas(lad.width, lad.height, lad.title)
    header_h = lad.top - TOP
    col_w = min((b.x - a.x for a, b in zip(lad.columns, lad.columns[1:])), default=COL_MIN + COL_GAP)
    col_w -= COL_GAP
    bands = {}
    for r in lad.rows:                              # alternate shading per packet
        if r.path >= 0:
            lo, hi = bands.get(r.path, (r.y, r.y))
            bands[r.path] = (min(lo, r.y), max(hi, r.y))
    for i, (lo, hi) in bands.items():
        if i % 2 == 0:
            ax.add_patch(Rectangle((MARGIN / 2, lo - ROW / 2), lad.width - MARGIN, hi - lo + ROW,
                                   facecolor="#f5f5f5", edgecolor="none", zorder=0))
    for c in lad.columns:
        kind = c.role if c.role in ("host", "world") else "container"
        ax.add_patch(FancyBboxPatch((c.x - col_w / 2, TOP), col_w, header_h,
                                    "round,pad=0,rounding_size=0.05", facecolor=FILL[kind],
                                    edgecolor=EDGE[kind], linewidth=1.0, zorder=2))
        for k, word in enumerate(header(c.point)):
            ax.text(c.x, TOP + PAD + k * LINE, word, ha="center", va="top", fontsize=FONT,
                    fontweight="bold", color=EDGE[kind], zorder=3)
        ax.text(c.x, TOP + PAD + 2 * LINE, f"{c.seen} seen", ha="center", va="top",
                fontsize=FONT, zorder=3, fontweight="normal" if c.seen else "bold",
                color=WARN if not c.seen else "#555555")
        ax.plot([c.x, c.x], [lad.top, lad.height - MARGIN], color="#b0b0b0", linewidth=0.8,
                linestyle=(0, (3, 3)), zorder=1)
    for r in lad.rows:
        if r.kind == "nat":                         # the rewrite, under its hop, off the arrows
            ax.text(lad.text_x + NAT_INDENT * CHAR, r.y, r.nat, va="center", ha="left",
                    fontsize=FONT, fontweight="bold", color=NAT_INK, zorder=6,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor=NAT_FILL, edgecolor=NAT_INK,
                              linewidth=0.8))
            continue
        nat = bool(r.nat)
        words = r.text[:len(r.text) - len(r.macs)] if r.macs else r.text
        ax.text(lad.text_x, r.y, words, va="center", ha="left", fontsize=FONT,
                fontweight="bold" if r.kind == "packet" or nat else "normal",
                color=NAT_INK if nat else ("#555555" if r.kind == "more" else INK[SAME]), zorder=3)
        if r.macs:                                  # MACs in their own ink where a router wrote them
            ax.text(lad.text_x + len(words) * CHAR, r.y, r.macs, va="center", ha="left",
                    fontsize=FONT, fontweight="bold" if r.mac_changed else "normal",
                    color=MAC_INK if r.mac_changed else INK[SAME], zorder=3)
    for a in lad.arrows:
        color = NAT_INK if a.nat else "#303030"
        style = "arc3,rad=-0.6" if a.start[0] == a.end[0] else "arc3,rad=0"   # same point: loop
        ax.add_patch(FancyArrowPatch(a.start, a.end, arrowstyle="-|>", mutation_scale=9,
                                     shrinkA=3, shrinkB=3, connectionstyle=style, color=color,
                                     linewidth=2.0 if a.nat else 1.1, zorder=4))
    for d in lad.dots:
        ax.add_patch(Circle((d.x, d.y), 0.045 if d.nat else 0.03,
                            color=NAT_INK if d.nat else "#303030", zorder=5))
    return fig


def text(lad: Ladder) -> str:
    """The ladder as text: each packet, then its hops with point, direction and rewrites."""
    out = [lad.title]
    dots = {(d.path, d.y): d for d in lad.dots}
    width = max([len(c.point) for c in lad.columns] + [5])
    for r in lad.rows:
        if r.kind == "nat":                         # said on its hop's line
            continue
        if r.kind != "hop":
            out.append(r.text)
            continue
        d = dots[(r.path, r.y)]
        line = f"{r.text:<46} at {d.point:<{width}} {d.direction:<3}"
        notes = (["MACs rewritten"] if r.mac_changed else []) + ([f"NAT: {r.nat}"] if r.nat else [])
        out.append((line + "".join(f"  {n}" for n in notes)).rstrip())
    empty = [c.point for c in lad.columns if not c.seen]
    if empty and lad.dots:
        out.append(f"nothing seen at {', '.join(empty)}")
    return "\n".join(out)


def figure(what, listing: str | None = None) -> Figure:
    """A Ladder (or what `layout` accepts, laid out as it does by default) as a Figure;
    `listing` is its text form (default: `text(ladder)`; a trace gives its own)."""
    lad = what if isinstance(what, Ladder) else layout(what)
    return Figure(lad, _figure, text(lad) if listing is None else listing)


def ladder(what, points=None, limit: int = LIMIT, macs: bool | None = None, **flow) -> Figure:
    """The ladder diagram of captured packets as a Figure (see the module docstring); `macs`
    True shows each hop's MAC addresses, False never, None where the ladder has ARP or a
    bridge."""
    return figure(layout(what, points, limit, macs=macs, **flow))
