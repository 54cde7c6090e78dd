"""Figures: the shapes a diagram is made of, drawn with matplotlib or as text.

Shared by the topology diagram (labkit.draw.diagram), the packet ladder (labkit.draw.ladder) and
the netfilter path (labkit.draw.netfilter):

    FONT, CHAR, LINE, ...       text metrics: monospace, so a text is len(text) * CHAR wide
    Rect, Line, Chip, Box, ...  a topology diagram as plain data (what diagram.layout makes)
    canvas(width, height, title) -> (Figure, Axes)   in inches, the title at the top left
    figure_bytes(make, fmt)     PNG bytes or SVG text; the same figure gives the same bytes
    Figure                      every figure of the course: render("png"|"svg"|"text"), PNG
                                (or SVG, for printing) and its text in Jupyter, text in a terminal
    layout_figure(layout), layout_text(layout)       a topology diagram drawn, or as text

Geometry is in inches, origin top left, y growing downward. matplotlib is imported only inside
the functions that draw (no pyplot, Agg), so importing this module stays light.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from ..errors import BadValue

SAME, ADDED, REMOVED, CHANGED = "same", "added", "removed", "changed"
MARKS = {SAME: " ", ADDED: "+", REMOVED: "-", CHANGED: "~"}

FONT, TITLE_FONT = 8.0, 9.5                       # points, DejaVu Sans Mono (0.6 em advance)
CHAR, TITLE_CHAR = FONT * 0.6 / 72, TITLE_FONT * 0.6 / 72
LINE, TITLE_LINE = FONT * 1.45 / 72, TITLE_FONT * 1.6 / 72
PAD, BOX_PAD, MARGIN = 0.07, 0.12, 0.2           # inside a chip or note; inside a box; around
TOP = MARGIN + TITLE_LINE + 0.15                  # where a figure's content starts, under its title
DPI = 110
A4_WIDTH = 6.3                                    # inches: an A4 page's text width (160 mm)
A4_MIN_FONT = 6.5                                 # points: the smallest text readable there

FILL = {"host": "#e8f0fb", "world": "#e6f4e6", "container": "#fdf5e2", "summary": "#f2f2f2"}
EDGE = {"host": "#4a6fa5", "world": "#4f8a4f", "container": "#a8843a", "summary": "#9a9a9a"}
INK = {SAME: "#1f1f1f", ADDED: "#138a36", REMOVED: "#9a9a9a", CHANGED: "#d0650a"}
CHIP_FILL = {"bridge": "#efe5fa", "loopback": "#f6f6f6", "summary": "#f2f2f2"}
WIRE = {"veth": "#303030", "port": "#7a52b3", "summary": "#9a9a9a"}
WARN = "#b3261e"


# ---- shapes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle: x, y of the top-left corner, width, height (inches)."""
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: Rect, tol: float = 1e-6) -> bool:
        """True if the two rectangles share area (touching edges do not count)."""
        return (self.x < other.right - tol and other.x < self.right - tol
                and self.y < other.bottom - tol and other.y < self.bottom - tol)

    def contains(self, other: Rect, tol: float = 1e-6) -> bool:
        """True if `other` lies wholly inside this rectangle."""
        return (self.x - tol <= other.x and other.right <= self.right + tol
                and self.y - tol <= other.y and other.bottom <= self.bottom + tol)


@dataclass(frozen=True)
class Line:
    """One line of text (an interface name, an address, a MAC, a route, a NAT rule)."""
    text: str
    status: str = SAME
    bold: bool = False
    kind: str = ""                               # "warning"; in legends "veth", "port"


@dataclass(frozen=True)
class Chip:
    """An interface drawn inside its namespace's box; kind "summary" stands for hidden ones."""
    namespace: str
    name: str
    kind: str
    rect: Rect
    lines: tuple[Line, ...]
    status: str = SAME
    peer: tuple[str, str] | None = None
    master: str | None = None


@dataclass(frozen=True)
class Note:
    """A block of text inside a box: "notes" (routes, sysctls, services, warnings) or "nat"."""
    kind: str
    rect: Rect
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Box:
    """A namespace (kind host, world, container) or, with kind "summary", hidden containers."""
    name: str                                    # the namespace's role, or the summary's "…k"
    kind: str
    rect: Rect
    title: Line
    chips: tuple[Chip, ...] = ()
    notes: tuple[Note, ...] = ()
    status: str = SAME
    hidden: tuple[str, ...] = ()                 # summary boxes: the namespaces they stand for


@dataclass(frozen=True)
class Edge:
    """A veth pair ("veth"), a bridge port ("port") or a link between summaries ("summary")."""
    kind: str
    a: tuple[str, str]                           # (namespace, interface) at each end
    b: tuple[str, str]
    points: tuple[tuple[float, float], tuple[float, float]]
    curve: float = 0.0                           # arc between chips in one column, else 0
    status: str = SAME


@dataclass(frozen=True)
class Layout:
    """A whole diagram as data: what render() draws and str(diagram.figure(...)) prints."""
    title: str
    width: float
    height: float
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    legend: tuple[Line, ...] = ()
    compared: bool = False                       # drawn against a previous topology
    changed: bool = False                        # ... and something differs

    def box(self, name: str) -> Box | None:
        """The box of namespace `name` (None if absent or summarised)."""
        return next((b for b in self.boxes if b.name == name), None)

    def chip(self, namespace: str, name: str) -> Chip | None:
        """The chip of interface `name` in `namespace`, or None."""
        box = self.box(namespace)
        return next((c for c in box.chips if c.name == name), None) if box else None

    def chips(self) -> list[Chip]:
        """Every chip, box by box."""
        return [c for b in self.boxes for c in b.chips]


# ---- matplotlib ------------------------------------------------------------------------------

def _rc() -> dict:
    return {"svg.fonttype": "none", "svg.hashsalt": "labkit", "font.family": "monospace",
            "font.monospace": ["DejaVu Sans Mono"], "path.simplify": False}


def canvas(width: float, height: float, title: str):
    """(Figure, Axes) of width x height inches, axes in inches, `title` at the top left.

    No pyplot: nothing global changes. Call from the `make` given to figure_bytes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(MARGIN, MARGIN, title, fontsize=TITLE_FONT + 1, fontweight="bold", va="top")
    return fig, ax


def figure_bytes(make, fmt: str, dpi: int = DPI) -> bytes | str:
    """PNG bytes or SVG text of the Figure that `make()` returns (Agg; SVG text stays text).

    Output repeats byte for byte: no dates or versions in it, fixed SVG ids."""
    if fmt not in ("png", "svg"):
        raise BadValue(f"cannot render format {fmt!r}: use 'png' or 'svg'")
    import io

    import matplotlib
    with matplotlib.rc_context(_rc()):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        fig = make()
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        if fmt == "png":
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
            return buf.getvalue()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        return buf.getvalue().decode()


def _ink(ln: Line) -> str:
    if ln.status != SAME:
        return INK[ln.status]
    return WARN if ln.kind == "warning" else WIRE.get(ln.kind, INK[SAME])


def layout_figure(lay: Layout):
    """A matplotlib Figure of a topology Layout: boxes, chips, notes, edges, legend."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = canvas(lay.width, lay.height, lay.title)
    mark = 2 * CHAR if lay.compared else 0

    def rect(r: Rect, fill, edge, status, z, radius=0.06, lw=0.9):
        style = "--" if status == REMOVED else "-"
        edge = INK[status] if status != SAME else edge
        lw = 1.8 if status in (ADDED, CHANGED) else lw
        ax.add_patch(FancyBboxPatch((r.x, r.y), r.w, r.h, f"round,pad=0,rounding_size={radius}",
                                    facecolor=fill if status != REMOVED else "#fafafa",
                                    edgecolor=edge, linestyle=style, linewidth=lw, zorder=z))

    def lines(x, y, items, z=5):
        for k, ln in enumerate(items):
            yk = y + k * LINE
            if lay.compared and ln.status != SAME:
                ax.text(x, yk, MARKS[ln.status].replace("-", "\u2212"), color=INK[ln.status],
                        fontsize=FONT, fontweight="bold", va="top", ha="left", zorder=z)
            ax.text(x + mark, yk, ln.text, color=_ink(ln), fontsize=FONT, va="top",
                    ha="left", fontweight="bold" if ln.bold else "normal", zorder=z)

    for b in lay.boxes:
        rect(b.rect, FILL.get(b.kind, FILL["container"]), EDGE.get(b.kind, EDGE["container"]),
             b.status, 1, 0.1, 1.2)
        ax.text(b.rect.x + BOX_PAD, b.rect.y + BOX_PAD * 0.6, b.title.text, fontsize=TITLE_FONT,
                fontweight="bold", va="top", color=INK[b.status] if b.status != SAME
                else EDGE.get(b.kind, "#333"), zorder=5)
        for c in b.chips:
            rect(c.rect, CHIP_FILL.get(c.kind, "white"), "#606060", c.status, 3, 0.04, 0.8)
            lines(c.rect.x + PAD, c.rect.y + PAD, c.lines)
        for n in b.notes:
            if n.kind == "nat":
                rect(Rect(n.rect.x - PAD / 2, n.rect.y, n.rect.w + PAD, n.rect.h), "#fff3c4",
                     "#c9a227", SAME, 3, 0.04, 0.7)
            lines(n.rect.x + (PAD / 2 if n.kind == "nat" else 0), n.rect.y + PAD, n.lines)
    for e in lay.edges:
        color = INK[e.status] if e.status != SAME else WIRE[e.kind]
        style = "--" if e.status == REMOVED else (":" if e.kind == "summary" else "-")
        ax.add_patch(FancyArrowPatch(e.points[0], e.points[1], arrowstyle="-", shrinkA=0,
                                     shrinkB=0, connectionstyle=f"arc3,rad={e.curve}",
                                     color=color, linestyle=style, zorder=2,
                                     linewidth=2.0 if e.status == ADDED else 1.3))
    x = MARGIN
    for ln in lay.legend:
        ax.text(x, lay.height - MARGIN - LINE, ln.text, fontsize=FONT, va="top",
                color=_ink(ln), fontweight="bold" if ln.kind in WIRE else "normal")
        x += (len(ln.text) + 3) * CHAR
    return fig


# ---- display -----------------------------------------------------------------------------------

def a4_points(fontsize: float, width: float) -> float:
    """Size in points of `fontsize` text in a figure `width` inches wide, printed no wider
    than an A4 page's text (a narrower figure keeps its size)."""
    return fontsize * min(1.0, A4_WIDTH / width)


def inline_svg(svg: str) -> str:
    """SVG text without the XML prolog before <svg>, to place inside an HTML page."""
    return svg[svg.index("<svg"):] if "<svg" in svg else svg


def fitted_svg(svg: str) -> str:
    """`inline_svg(svg)` that scales down to the width of what holds it (never wider, never
    larger than drawn): width 100%, its natural width as max-width, height from the viewBox."""
    import re
    svg = inline_svg(svg)
    head = re.match(r'<svg[^>]*?>', svg)
    if head is None:
        return svg
    tag = head.group(0)
    width = re.search(r'\swidth="([^"]+)"', tag)
    fitted = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    natural = f"max-width:{width.group(1)};" if width else ""
    fitted = fitted[:-1] + f' width="100%" style="{natural}height:auto;display:block">'
    return fitted + svg[head.end():]


class Figure:
    """A drawing of the course (topology diagram, packet ladder, netfilter path): one type
    that notebooks, handouts, the site and a terminal all show.

        Figure(model, draw, text)    model: plain data (a diagram or netfilter Layout, a
                                     ladder.Ladder); draw(model): a matplotlib Figure (see
                                     canvas); text: the figure as text
        fig.render("png"|"svg"|"text")   PNG bytes, SVG text or the text; each made once,
                                     the same bytes for the same model (figure_bytes)
        fig.save(path)               a .png or .svg file, by its extension
        str(fig)                     the text: what a terminal prints

    In Jupyter a figure shows as `Figure.shows` ("png": what notebooks store; "svg": what
    labkit.teach.printed.vector switches every figure to for printing) with its text as
    text/plain: nbval compares that text (it never compares PNG), so a stored figure is
    tested by what it says, not by its pixels."""
    shows = "png"

    def __init__(self, model, draw, text: str):
        self.model, self._draw, self.text = model, draw, text
        self._out: dict[str, bytes | str] = {}

    def render(self, fmt: str = "png") -> bytes | str:
        """PNG bytes, SVG text, or the figure's text (fmt "png", "svg", "text")."""
        if fmt == "text":
            return self.text
        if fmt not in ("png", "svg"):
            raise BadValue(f"cannot render format {fmt!r}: use 'png', 'svg' or 'text'")
        if fmt not in self._out:
            with quiet_matplotlib():
                self._out[fmt] = figure_bytes(lambda: self._draw(self.model), fmt)
        return self._out[fmt]

    def save(self, path):
        """Write a .png or .svg file (by its extension); return its path."""
        from pathlib import Path
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in ("png", "svg"):
            raise BadValue(f"cannot draw to {str(path)!r}: name the file .png or .svg")
        out = self.render(fmt)
        try:
            path.write_bytes(out) if fmt == "png" else path.write_text(out)
        except OSError as e:
            raise BadValue(f"cannot write {str(path)!r}: {e.strerror}; choose a writable "
                           f"path") from None
        return path

    def _repr_png_(self) -> bytes | None:
        return self.render("png") if Figure.shows == "png" else None

    def _repr_svg_(self) -> str | None:
        return self.render("svg") if Figure.shows == "svg" else None

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


@contextlib.contextmanager
def quiet_matplotlib():
    """Keep matplotlib's one-off log lines (building its font cache) out of a cell's outputs."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- text ------------------------------------------------------------------------------------

def ascii_text(s: str) -> str:
    """`s` with the few non-ASCII signs figures use (\u2026 \u2192 \u00b7) spelled in ASCII."""
    return s.replace("\u2026", "...").replace("\u2192", "->").replace("\u00b7", "-")


def layout_text(lay: Layout) -> str:
    """A topology Layout as a text tree (namespaces, interfaces, addresses) for a terminal."""
    def m(status):
        return MARKS[status] + " " if lay.compared else ""
    out = [ascii_text(lay.title)]
    if lay.compared:
        out.append("(since the previous drawing: + added, - removed, ~ changed)" if lay.changed
                   else "(nothing changed since the previous drawing)")
    for b in lay.boxes:
        if b.kind == "summary":
            out.append(ascii_text(f"{m(SAME)}{b.title.text} ({b.notes[0].lines[0].text})"))
            continue
        out.append(f"{m(b.status)}{b.name}")
        for c in b.chips:
            parts = [("" if ln.status in (SAME, c.status) else MARKS[ln.status]) + ln.text
                     for ln in c.lines[1:]]
            if c.master:
                parts.append(f"port of {c.master}")
            if c.peer and c.kind != "summary":
                parts.append(f"<-> {c.peer[0]}/{c.peer[1]}")
            out.append(ascii_text(f"{m(c.status)}  {c.lines[0].text:<8} "
                                  + "  ".join(parts)).rstrip())
        for n in b.notes:
            out += [ascii_text(f"{m(ln.status)}  {ln.text}") for ln in n.lines]
    out += [ascii_text(ln.text) for ln in lay.legend if not lay.compared and ln.kind not in WIRE]
    return "\n".join(out)
