"""Topology diagrams: a Topology (inspected from the kernel, or a stage's plan) as a picture.

Two steps, so the picture is testable without pixels:

    layout(topology, previous=None) -> Layout     plain data: boxes, interface chips, lines, marks
    figure(layout_or_topology) -> Figure          .render("png"|"svg"|"text"): matplotlib
                                                  (imported lazily, Agg) bytes | str, or text

`figure(topology, previous=None)` is the diagram as a labkit.draw.figure.Figure (PNG in a
notebook, SVG in a handout, the text tree in a terminal and as its text); `draw(topology,
path)` writes a .png or .svg file; `follow(topology)` marks what changed since the previous
drawing of the same lab. This module puts the layout together: labkit.draw.marks decides what
is shown and how it is marked, labkit.draw.placement where it goes; the shapes (Rect, Box,
Chip, Line, Edge, Layout), the drawing (matplotlib) and Figure are in labkit.draw.figure.

Columns follow a packet that leaves a container: containers | host (veth ports, bridges and
lo, uplink and NAT) | world. Each namespace is a Box; each interface a Chip inside it (name,
addresses, MAC); veth pairs and bridge ports are Edges between chips. Against `previous`,
every box, chip, line and edge is marked SAME, ADDED, REMOVED (still drawn, grey and dashed)
or CHANGED. Above placement.SUMMARY_ABOVE containers only a few are drawn; each run of hidden
containers becomes one "... N more" box.
"""
from __future__ import annotations

from .figure import (ADDED, CHANGED, CHAR, LINE, MARGIN, REMOVED, SAME, TITLE_CHAR, TOP, Edge,
                     Figure, Layout, Line, Rect, layout_figure)
from .figure import layout_text as text
from .marks import merge, views
from .placement import Geometry, anchors, runs
from ..model import stages
from ..model.topology import Topology

__all__ = ["ADDED", "CHANGED", "REMOVED", "SAME", "Figure", "Layout", "Line", "Rect",
           "cli_draw", "draw", "figure", "follow", "layout"]


def layout(topology: Topology, previous: Topology | None = None, macs: bool | None = None) -> Layout:
    """Lay out `topology` as boxes, chips and edges, marked against `previous` if given; `macs`
    shows interfaces' MACs (None: in the stages about them, see marks.shows_macs)."""
    compared = previous is not None
    shown = views(topology, previous, macs)
    host = next((v for v in shown if v.kind == "host"), None)
    world = next((v for v in shown if v.kind == "world"), None)
    column = [v for v in shown if v is not host and v is not world]
    n = len([v for v in column if v.kind == "container" and v.status != REMOVED])
    lab = f"lab {topology.lab}" if topology.lab else "default lab"
    title = "  \u00b7  ".join([_stage_words(topology.stage), lab,
                                f"{n} container{'s' if n != 1 else ''}"])
    geo = Geometry(2 if compared else 0, TOP)
    items = runs(column)
    geo.containers(items, host.name if host else None)
    if host:
        hidden_in = {v.name: k for k, it in enumerate(items) if isinstance(it, list) for v in it}
        geo.host(host, column, hidden_in, world)
    if world:
        geo.world(world)

    boxes = tuple(geo.boxes)
    edges = _edges(topology, previous, boxes, geo.chips)
    changed = compared and (any(v.changed for v in shown) or any(e.status != SAME for e in edges))
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


def _stage_words(stage: str) -> str:
    """How a diagram's title names `stage`: "stage bridge", "before stage bridge" (where a
    practice starts), "live topology" (none)."""
    if not stage:
        return "live topology"
    started = stages.practised(stage)
    return f"before stage {started}" if started else f"stage {stage}"


def _edges(topology, previous, boxes, chips) -> tuple[Edge, ...]:
    """Veth pairs and bridge ports, current ones marked against previous ones."""
    def pairs(t):
        out = {}
        for ns in t.namespaces if t else ():
            for i in ns.interfaces:
                if i.peer:
                    out[frozenset([(ns.role, i.name), tuple(i.peer)])] = ("veth", (ns.role, i.name),
                                                                         tuple(i.peer))
                if i.master:                        # port first, bridge second
                    out[frozenset([(ns.role, i.name), (ns.role, i.master)])] = (
                        "port", (ns.role, i.name), (ns.role, i.master))
        return out
    cur, prev = pairs(topology), pairs(previous)
    edges = []
    for key, st in merge(list(cur), list(prev), previous is not None):
        kind, a, b = cur.get(key) or prev[key]
        if a in chips and b in chips:
            if kind == "veth" and chips[a].x > chips[b].x:
                a, b = b, a                         # left to right
            points, curve = anchors(chips[a], chips[b])
            edges.append(Edge(kind, a, b, points, curve, st))
    for bx in boxes:                                # summaries: container run <-> host veths
        for c in bx.chips:
            if c.kind == "summary" and c.peer in chips:
                points, _ = anchors(chips[c.peer], c.rect)
                edges.append(Edge("summary", c.peer, (c.namespace, c.name), points))
                if c.master and (c.namespace, c.master) in chips:
                    points, _ = anchors(c.rect, chips[(c.namespace, c.master)])
                    edges.append(Edge("summary", (c.namespace, c.name), (c.namespace, c.master),
                                      points))
    return tuple(edges)


def figure(what: Topology | Layout, previous: Topology | None = None) -> Figure:
    """The diagram as a Figure (PNG or SVG, and the text tree) of a Layout, or of a Topology
    laid out with what changed since `previous` marked."""
    lay = what if isinstance(what, Layout) else layout(what, previous)
    return Figure(lay, layout_figure, text(lay))


def draw(topology: Topology, path, previous: Topology | None = None):
    """Write the diagram of `topology` to `path`, PNG or SVG by its extension; return the path."""
    return figure(topology, previous).save(path)


def cli_draw(topology: Topology, path) -> str:
    """For `labkit draw -o FILE`: write the file, return one line to print."""
    path = draw(topology, path)
    n = sum(len(ns.interfaces) for ns in topology.namespaces)
    return f"wrote {path} ({len(topology.namespaces)} namespaces, {n} interfaces)"


_drawn: dict[str, Topology] = {}


def follow(topology: Topology) -> Figure:
    """The diagram of `topology` marked against the previous follow() of the same lab (if any)."""
    view = figure(topology, _drawn.get(topology.lab))
    _drawn[topology.lab] = topology
    return view
