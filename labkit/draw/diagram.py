"""Topology diagrams: a Topology (inspected from the kernel, or a stage's plan) as a picture.

Two steps, so the picture is testable without pixels:

    layout(topology, previous=None) -> Layout     plain data: boxes, interface chips, lines, marks
    render(layout_or_topology, fmt="png"|"svg")   matplotlib (imported lazily, Agg): bytes | str

`draw(topology, path)` writes a .png or .svg file; `TopologyView` shows itself in Jupyter (SVG,
PNG, HTML) and as a text tree in a terminal; `follow(topology)` marks what changed since the
previous drawing of the same lab. This module decides what goes where; the shapes (Rect, Box,
Chip, Line, Edge, Layout), the drawing and the Display base are in labkit.draw.figure.

Columns follow a packet that leaves a container: containers | host (veth ports, bridges and
lo, uplink and NAT) | world. Each namespace is a Box; each interface a Chip inside it (name,
addresses, MAC); veth pairs and bridge ports are Edges between chips. Against `previous`,
every box, chip, line and edge is marked SAME, ADDED, REMOVED (still drawn, grey and dashed)
or CHANGED. Above SUMMARY_ABOVE containers only the first HEAD, the changed ones (up to EXTRA)
and the last TAIL are drawn; each run of hidden containers becomes one "... N more" box.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..model import plan
from .figure import (ADDED, BOX_PAD, CHANGED, CHAR, DPI, LINE, MARGIN, PAD, REMOVED, SAME,
                     TITLE_CHAR, TITLE_LINE, TOP, Box, Chip, Display, Edge, Layout, Line, Note,
                     Rect, figure_bytes, layout_figure)
from .figure import layout_text as text
from ..model.topology import Masquerade, PortMapping, Topology, route_text

SUMMARY_ABOVE, HEAD, TAIL, EXTRA = 20, 3, 1, 4
CHIP_GAP, ROW_GAP, COL_GAP, BOX_GAP = 0.12, 0.16, 0.45, 0.55
NULL_MAC = "00:00:00:00:00:00"


# ---- merging the topology with the previous one: what to show, and its marks ----------------

@dataclass
class _If:
    ns: str
    name: str
    kind: str
    status: str
    lines: list
    peer: tuple[str, str] | None
    master: str | None


@dataclass
class _Ns:
    name: str
    role: str
    status: str
    ifs: list
    notes: list
    nat: list

    @property
    def changed(self) -> bool:
        return (self.status != SAME or any(i.status != SAME for i in self.ifs)
                or any(ln.status != SAME for ln in self.notes + self.nat))


def _status(cur, prev, compared: bool) -> str:
    if not compared:
        return SAME
    if cur is None:
        return REMOVED
    if prev is None:
        return ADDED
    return SAME if cur == prev else CHANGED


def _merge(cur: list, prev: list, compared: bool) -> list:
    """[(item, status)]: current items in order, then those only in `prev` (removed)."""
    out = [(it, ADDED if compared and it not in prev else SAME) for it in cur]
    return out + [(it, REMOVED) for it in prev if it not in cur] if compared else out


def _lines(items: list, compared: bool, prev: list = ()) -> list:
    """Items are tuples of strings (one rule, route, warning); each string becomes a Line."""
    return [Line(text, st, False, "warning" if item[0].startswith("!") else "")
            for item, st in _merge(list(items), list(prev), compared) for text in item]


def _if_view(ns: str, cur, prev, compared: bool) -> _If:
    itf = cur or prev
    st = _status(cur, prev, compared)
    name = itf.name + ("  bridge" if itf.kind == "bridge" else "") + ("" if itf.up else "  DOWN")
    name_st = st if st in (ADDED, REMOVED) else (
        CHANGED if st == CHANGED and (cur.up, cur.kind) != (prev.up, prev.kind) else SAME)

    def macs(i):
        return [i.mac] if i is not None and i.mac and i.mac != NULL_MAC else []

    lines = [Line(name, name_st, True)]
    lines += [Line(a, s) for a, s in _merge(list(cur.addresses if cur else ()),
                                            list(prev.addresses if prev else ()), compared)]
    lines += [Line(m, s) for m, s in _merge(macs(cur), macs(prev), compared)]
    return _If(ns, itf.name, itf.kind, st, lines, itf.peer, itf.master)


def _conflicts(ns) -> list[tuple[str, str]]:
    """Warnings for one network on several interfaces (the two-veths lesson)."""
    nets: dict = {}
    for itf in ns.interfaces if ns else ():
        for cidr in itf.addresses:
            try:
                net = ipaddress.ip_interface(cidr).network
            except ValueError:
                continue
            if itf.kind != "loopback" and net.prefixlen < net.max_prefixlen:
                nets.setdefault(str(net), []).append(itf.name)
    out = []
    for net, names in nets.items():
        if len(set(names)) > 1:
            shown = (" and ".join(names) if len(names) == 2 else ", ".join(names) if len(names) <= 4
                     else f"{names[0]}, \u2026 {names[-1]}")
            out.append((f"! {net} on {shown}:", f"  {len(names)} routes, the kernel uses one"))
    return out


def _notes(ns, services) -> list[tuple]:
    if ns is None:
        return []
    items = [(route_text(r),) for r in ns.routes]
    items += [(f"{k.rsplit('.', 1)[-1]}={v}",) for k, v in ns.sysctls     # what labkit turned on
              if "disable_ipv6" not in k and v != "0"]
    items += _conflicts(ns)
    for s in services:
        if s.namespace == ns.name:
            where = f"{s.address}:{s.port}" if s.address else (f"port {s.port}" if s.port else "")
            items.append((f"runs {' '.join(s.argv[:3])}",) + ((f"  on {where}",) if where else ()))
    return items


def _nat_items(topology, ns_name: str) -> list[tuple]:
    items = []
    for rule in topology.nat if topology else ():
        if rule.namespace != ns_name:
            continue
        if isinstance(rule, Masquerade):
            items.append((f"masquerade {rule.source}",)
                         + ((f"  unless out {rule.not_out}",) if rule.not_out else ()))
        elif isinstance(rule, PortMapping):
            items.append((f"publish {rule.proto} {rule.address}:{rule.port}",
                          f"  \u2192 {rule.to_address}:{rule.to_port}"))
    return items


def _ns_key(ns) -> tuple:
    k = plan.container_index(ns.name)
    return ({"host": 0, "world": 1}.get(ns.role, 2), k if k is not None else 10**9, ns.name)


def _views(topology: Topology, previous: Topology | None) -> list[_Ns]:
    compared = previous is not None
    prev_t = previous or Topology(topology.lab, None)
    names = [n.name for n in topology.namespaces]
    names += [n.name for n in prev_t.namespaces if n.name not in names]
    views = []
    for name in names:
        cur, prev = topology.namespace(name), prev_t.namespace(name)
        ns = cur or prev
        ifnames = [i.name for i in (cur.interfaces if cur else ())]
        ifnames += [i.name for i in (prev.interfaces if prev else ()) if i.name not in ifnames]
        ifs = [_if_view(name, cur and cur.interface(n), prev and prev.interface(n), compared)
               for n in ifnames]
        notes = _lines(_notes(cur, topology.services), compared, _notes(prev, prev_t.services))
        nat = _lines(_nat_items(topology if cur else None, name), compared,
                     _nat_items(prev_t if prev else None, name))
        if nat:
            backend = topology.nat_backend or prev_t.nat_backend
            nat.insert(0, Line("NAT" + (f" ({backend})" if backend else ""), SAME, True))
        views.append(_Ns(name, ns.role, _status(cur, prev, compared) if compared and (
            cur is None or prev is None) else SAME, ifs, notes, nat))
    return sorted(views, key=_ns_key)


# ---- geometry --------------------------------------------------------------------------------

def _size(lines, marks: int) -> tuple[float, float]:
    width = max((len(ln.text) for ln in lines), default=0) + marks
    return width * CHAR + 2 * PAD, len(lines) * LINE + 2 * PAD


def _stack(items: list, top: float) -> list:
    """items: [(preferred top, height, payload)] -> [(top, payload)], in order, never overlapping."""
    out, y = [], top
    for want, h, payload in sorted(items, key=lambda t: t[0]):
        y0 = max(want, y)
        out.append((y0, payload))
        y = y0 + h + CHIP_GAP
    return out


def _summary_lines(names: list[str], what: str) -> tuple[Line, ...]:
    return (Line(f"\u2026 {len(names)} more {what}", SAME, True), Line(f"{names[0]} \u2026 {names[-1]}"))


def _anchors(a: Rect, b: Rect) -> tuple[tuple, float]:
    if a.right <= b.x:
        return ((a.right, a.cy), (b.x, b.cy)), 0.0
    if b.right <= a.x:
        return ((a.x, a.cy), (b.right, b.cy)), 0.0
    return ((a.x, a.cy), (b.x, b.cy)), 0.4          # same column: arc out to the left


def _runs(column: list) -> list:
    """Containers to draw, with each run of hidden ones as a list (see SUMMARY_ABOVE)."""
    if len(column) <= SUMMARY_ABOVE:
        return list(column)
    keep = set(range(HEAD)) | set(range(len(column) - TAIL, len(column)))
    keep |= set([i for i, v in enumerate(column) if v.changed and i not in keep][:EXTRA])
    items: list = []
    for i, v in enumerate(column):
        if i in keep:
            items.append(v)
        elif items and isinstance(items[-1], list):
            items[-1].append(v)
        else:
            items.append([v])
    return items


class _Geometry:
    """Places boxes left to right: the container column, the host, the world."""

    def __init__(self, marks: int, top: float):
        self.marks, self.top, self.title_h = marks, top, BOX_PAD + TITLE_LINE
        self.boxes: list[Box] = []
        self.chips: dict[tuple[str, str], Rect] = {}     # (namespace, interface) -> where
        self.right = MARGIN - BOX_GAP

    def size(self, lines) -> tuple[float, float]:
        return _size(lines, self.marks)

    def chip(self, ns: str, i: _If, rect: Rect) -> Chip:
        self.chips[(ns, i.name)] = rect
        return Chip(ns, i.name, i.kind, rect, tuple(i.lines), i.status, i.peer, i.master)

    def add(self, v: _Ns, rect: Rect, chips: list, notes) -> None:
        self.boxes.append(Box(v.name, v.role, rect, Line(v.name, v.status, True), tuple(chips),
                              tuple(notes), v.status))
        self.right = rect.right

    def containers(self, items: list, host_name: str | None) -> None:
        """Left part of each box: title, other chips (lo), notes if narrow; right: facing chips."""
        def facing(i) -> bool:
            return i.peer is not None and i.peer[0] == host_name

        shown = [it for it in items if not isinstance(it, list)]
        face_w = max((self.size(i.lines)[0] for v in shown for i in v.ifs if facing(i)), default=0)
        left_w = note_w = 0.0
        for it in items:
            if isinstance(it, list):
                lines = _summary_lines([v.name for v in it], "containers")
                left_w = max(left_w, max(len(ln.text) for ln in lines) * CHAR)
                continue
            ws = [self.size(i.lines)[0] for i in it.ifs if not facing(i)]
            left_w = max(left_w, sum(ws) + CHIP_GAP * max(len(ws) - 1, 0),
                         (len(it.name) + self.marks) * TITLE_CHAR)
            note_w = max(note_w, self.size(it.notes + it.nat)[0] if it.notes or it.nat else 0)
        under = note_w > left_w                     # notes under the facing chips, else beside
        col_w = max(2 * BOX_PAD + left_w + (COL_GAP / 2 + face_w if face_w else 0),
                    note_w + 2 * BOX_PAD)
        y, x0 = self.top + TITLE_LINE, MARGIN
        for k, it in enumerate(items):
            if isinstance(it, list):
                names = [v.name for v in it]
                lines = _summary_lines(names, "containers")
                rect = Rect(x0, y, col_w, self.title_h + LINE + 2 * BOX_PAD)
                note = Note("notes", Rect(x0 + BOX_PAD, y + self.title_h, left_w, LINE + PAD),
                            lines[1:])
                self.boxes.append(Box(f"\u2026{k}", "summary", rect, lines[0], (), (note,), SAME,
                                      tuple(names)))
                self.chips[(f"\u2026{k}", "")] = rect
                y = rect.bottom + ROW_GAP
                continue
            placed, x, row_h = [], x0 + BOX_PAD, 0.0
            for i in (i for i in it.ifs if not facing(i)):
                w, h = self.size(i.lines)
                placed.append(self.chip(it.name, i, Rect(x, y + self.title_h, w, h)))
                x, row_h = x + w + CHIP_GAP, max(row_h, h)
            fy = y + BOX_PAD
            for i in (i for i in it.ifs if facing(i)):
                h = self.size(i.lines)[1]
                placed.append(self.chip(it.name, i, Rect(x0 + col_w - BOX_PAD - face_w, fy,
                                                         face_w, h)))
                fy += h + CHIP_GAP
            bottom = y + self.title_h + row_h
            if under:
                bottom = max(bottom, fy - CHIP_GAP)
            notes = ()
            if it.notes or it.nat:
                nw, nh = self.size(it.notes + it.nat)
                ny = bottom + (CHIP_GAP if row_h or under else 0)
                notes = (Note("notes", Rect(x0 + BOX_PAD, ny, nw, nh), tuple(it.notes + it.nat)),)
                bottom = ny + nh
            bottom = max(bottom, fy - CHIP_GAP)
            self.add(it, Rect(x0, y, col_w, bottom + BOX_PAD - y), placed, notes)
            y = bottom + BOX_PAD + ROW_GAP
        self.right = x0 + col_w if items else self.right

    def host(self, host: _Ns, column: list, hidden_in: dict, world: _Ns | None) -> None:
        """Columns L (ports facing containers), M (lo, bridges, others; notes), R (uplinks, NAT)."""
        hx, htop = self.right + BOX_GAP, self.top + self.title_h
        col: dict[str, list] = {"L": [], "M": [], "R": []}
        runs: dict[int, list] = {}
        names = {v.name for v in column}
        for i in host.ifs:
            side = i.peer[0] if i.peer else None
            if side in hidden_in:
                runs.setdefault(hidden_in[side], []).append(i)
            else:
                col["L" if side in names else "R" if world and side == world.name else "M"].append(i)
        size = {i.name: self.size(i.lines) for i in host.ifs}
        summaries = {k: _summary_lines([i.name for i in r], "veths") for k, r in runs.items()}
        nat_w, nat_h = self.size(host.nat) if host.nat else (0, 0)
        note_w, note_h = self.size(host.notes) if host.notes else (0, 0)
        widths = {"L": max([size[i.name][0] for i in col["L"]]
                           + [self.size(s)[0] for s in summaries.values()], default=0),
                  "M": max([size[i.name][0] for i in col["M"]] + [note_w + 2 * PAD]),
                  "R": max([size[i.name][0] for i in col["R"]] + [nat_w])}
        xs, x = {}, hx + BOX_PAD
        for c, w in widths.items():
            xs[c] = x
            x += w + (COL_GAP if w else 0)
        host_w = max(x - COL_GAP - hx + BOX_PAD, (len(host.name) + self.marks) * TITLE_CHAR
                     + 2 * BOX_PAD)
        placed = []

        def stack(want, c, w=None) -> float:
            y = htop
            for ytop, i in _stack(want, htop):
                if isinstance(i, int):              # a summary of hidden veths
                    rect = Rect(xs[c], ytop, widths[c], self.size(summaries[i])[1])
                    masters = {p.master for p in runs[i]}
                    placed.append(Chip(host.name, f"\u2026{i}", "summary", rect, summaries[i],
                                       SAME, (f"\u2026{i}", ""),
                                       masters.pop() if len(masters) == 1 else None))
                    self.chips[(host.name, f"\u2026{i}")] = rect
                else:
                    rect = Rect(xs[c], ytop, w or size[i.name][0], size[i.name][1])
                    placed.append(self.chip(host.name, i, rect))
                y = rect.bottom + CHIP_GAP
            return y

        def centred(cy: float, h: float) -> float:
            return cy - h / 2

        want = [(centred(self.chips[i.peer].cy, size[i.name][1]) if i.peer in self.chips
                 else htop, size[i.name][1], i) for i in col["L"]]
        want += [(centred(self.chips[(f"\u2026{k}", "")].cy, self.size(s)[1]), self.size(s)[1], k)
                 for k, s in summaries.items()]
        stack(want, "L", widths["L"])
        ports = list(placed)
        want = []
        for i in col["M"]:
            ys = [c.rect.cy for c in ports if c.master == i.name]
            pref = centred(sum(ys) / len(ys), size[i.name][1]) if ys and i.kind == "bridge" else htop
            want.append((pref if i.kind != "loopback" else htop - 1, size[i.name][1], i))
        y = stack(want, "M")
        notes = [Note("notes", Rect(xs["M"] + 2 * PAD, y, note_w, note_h), tuple(host.notes))] \
            if host.notes else []
        bridges = [c for c in placed if c.kind == "bridge"]
        mid = (bridges[0].rect.cy if bridges else
               sum(c.rect.cy for c in ports) / len(ports) if ports else htop)
        y = stack([(centred(mid, size[i.name][1]), size[i.name][1], i) for i in col["R"]], "R")
        if host.nat:
            notes.append(Note("nat", Rect(xs["R"], y, nat_w, nat_h), tuple(host.nat)))
        bottom = max([c.rect.bottom for c in placed] + [n.rect.bottom for n in notes] + [htop])
        self.add(host, Rect(hx, self.top, host_w, bottom + BOX_PAD - self.top), placed, notes)

    def world(self, world: _Ns) -> None:
        """Chips stacked, the one facing the host level with its peer; then notes."""
        wx = self.right + BOX_GAP
        ordered = sorted(world.ifs, key=lambda i: not (i.peer and i.peer in self.chips))
        sizes = [self.size(i.lines) for i in ordered]
        notes = world.notes + world.nat
        ww = max([w for w, _ in sizes] + [self.size(notes)[0] if notes else 0])
        ww = max(ww + 2 * BOX_PAD, (len(world.name) + self.marks) * TITLE_CHAR + 2 * BOX_PAD)
        wtop = self.top
        if ordered and ordered[0].peer in self.chips:
            wtop = max(self.top, self.chips[ordered[0].peer].cy - sizes[0][1] / 2 - self.title_h)
        y, placed = wtop + self.title_h, []
        for i, (w, h) in zip(ordered, sizes):
            placed.append(self.chip(world.name, i, Rect(wx + BOX_PAD, y, w, h)))
            y += h + CHIP_GAP
        blocks = ()
        if notes:
            nw, nh = self.size(notes)
            blocks = (Note("notes", Rect(wx + BOX_PAD, y, nw, nh), tuple(notes)),)
            y += nh + CHIP_GAP
        self.add(world, Rect(wx, wtop, ww, y - CHIP_GAP + BOX_PAD - wtop), placed, blocks)


def layout(topology: Topology, previous: Topology | None = None) -> Layout:
    """Lay out `topology` as boxes, chips and edges, marked against `previous` if given."""
    compared = previous is not None
    views = _views(topology, previous)
    host = next((v for v in views if v.role == "host"), None)
    world = next((v for v in views if v.role == "world"), None)
    column = [v for v in views if v is not host and v is not world]
    n = len([v for v in column if v.role == "container"])
    lab = f"lab {topology.lab}" if topology.lab else "default lab"
    title = "  \u00b7  ".join([f"stage {topology.stage}" if topology.stage else "live topology",
                                lab, f"{n} container{'s' if n != 1 else ''}"])
    geo = _Geometry(2 if compared else 0, TOP)
    items = _runs(column)
    geo.containers(items, host.name if host else None)
    if host:
        hidden_in = {v.name: k for k, it in enumerate(items) if isinstance(it, list) for v in it}
        geo.host(host, column, hidden_in, world)
    if world:
        geo.world(world)

    boxes = tuple(geo.boxes)
    edges = _edges(topology, previous, boxes, geo.chips)
    changed = compared and (any(v.changed for v in views) or any(e.status != SAME for e in edges))
    kinds = {e.kind for e in edges}
    legend = tuple(Line(f"\u2500\u2500 {label}", SAME, False, kind) for kind, label in
                   (("veth", "veth pair"), ("port", "bridge port")) if kind in kinds)
    if compared:
        legend += ((Line("+ added", ADDED), Line("- removed", REMOVED), Line("~ changed", CHANGED))
                   if changed else (Line("nothing changed since the previous drawing"),))
    if not boxes:
        legend += (Line("nothing to draw: the lab has no namespaces (is it up?)"),)
    bottom = max([b.rect.bottom for b in boxes] + [TOP])
    height = bottom + (0.15 + LINE if legend else 0) + MARGIN
    width = max(geo.right + MARGIN, len(title) * TITLE_CHAR + 2 * MARGIN,
                sum(len(ln.text) + 3 for ln in legend) * CHAR + 2 * MARGIN)
    return Layout(title, round(width, 3), round(height, 3), boxes, edges, legend, compared,
                  changed)


def _edges(topology, previous, boxes, chips) -> tuple[Edge, ...]:
    """Veth pairs and bridge ports, current ones marked against previous ones."""
    def pairs(t):
        out = {}
        for ns in t.namespaces if t else ():
            for i in ns.interfaces:
                if i.peer:
                    out[frozenset([(ns.name, i.name), tuple(i.peer)])] = ("veth", (ns.name, i.name),
                                                                         tuple(i.peer))
                if i.master:                        # port first, bridge second
                    out[frozenset([(ns.name, i.name), (ns.name, i.master)])] = (
                        "port", (ns.name, i.name), (ns.name, i.master))
        return out
    cur, prev = pairs(topology), pairs(previous)
    edges = []
    for key, st in _merge(list(cur), list(prev), previous is not None):
        kind, a, b = cur.get(key) or prev[key]
        if a in chips and b in chips:
            if kind == "veth" and chips[a].x > chips[b].x:
                a, b = b, a                         # left to right
            points, curve = _anchors(chips[a], chips[b])
            edges.append(Edge(kind, a, b, points, curve, st))
    for bx in boxes:                                # summaries: container run <-> host veths
        for c in bx.chips:
            if c.kind == "summary" and c.peer in chips:
                points, _ = _anchors(chips[c.peer], c.rect)
                edges.append(Edge("summary", c.peer, (c.namespace, c.name), points))
                if c.master and (c.namespace, c.master) in chips:
                    points, _ = _anchors(c.rect, chips[(c.namespace, c.master)])
                    edges.append(Edge("summary", (c.namespace, c.name), (c.namespace, c.master),
                                      points))
    return tuple(edges)

# ---- drawing and showing -------------------------------------------------------------------

def render(what: Layout | Topology, fmt: str = "png", dpi: int = DPI) -> bytes | str:
    """PNG bytes or SVG text of a Layout (or of a Topology, laid out without marks)."""
    lay = what if isinstance(what, Layout) else layout(what)
    return figure_bytes(lambda: layout_figure(lay), fmt, dpi)


def draw(topology: Topology, path, previous: Topology | None = None):
    """Write the diagram of `topology` to `path`, PNG or SVG by its extension; return the path."""
    return TopologyView(topology, previous).save(path)


def cli_draw(topology: Topology, path) -> str:
    """For `labkit draw -o FILE`: write the file, return one line to print."""
    path = draw(topology, path)
    n = sum(len(ns.interfaces) for ns in topology.namespaces)
    return f"wrote {path} ({len(topology.namespaces)} namespaces, {n} interfaces)"




class TopologyView(Display):
    """A topology that shows itself (see Display); with `previous`, changes since then marked."""
    css = "labkit-topology"

    def __init__(self, topology: Topology, previous: Topology | None = None):
        self.topology, self.previous = topology, previous
        self._layout = None

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = layout(self.topology, self.previous)
        return self._layout

    def _render(self, fmt: str) -> bytes | str:
        return render(self.layout, fmt)

    def __str__(self) -> str:
        return text(self.layout)


_drawn: dict[str, Topology] = {}


def follow(topology: Topology) -> TopologyView:
    """A view of `topology` marked against the previous follow() of the same lab (if any)."""
    view = TopologyView(topology, _drawn.get(topology.lab))
    _drawn[topology.lab] = topology
    return view
