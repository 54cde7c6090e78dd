"""Typesetting a notebook's HTML for paper: code lines wrapped only between tokens, pictures
sized for the page, tables that fit, headings kept with what follows.

    typeset(main_html) -> (html, figures)   `main_html`: cells as nbconvert's lab template writes them
    wrap_points(text, width)                where a line of code breaks (a pure function)

- A code line longer than the page (page.CODE_COLUMNS characters) breaks at a space, never
  inside a word or an address; the broken line ends with a grey "↩" (CSS, so it is not copied)
  and goes on indented under its start.
- Inline code, table cells, and words of prose holding an address, a path or an option keep
  each token whole (`white-space: nowrap` spans); the line breaks between tokens.
- A table holding blocks of code is stacked (each cell under its header, full width).
- A picture keeps its drawn size when it fits; a wider one is scaled to the text width if its
  smallest text stays at least page.MIN_FIGURE_PT; otherwise its cell goes on a landscape page.
  Each picture is listed in `figures` with the size its smallest text prints at.
"""
from __future__ import annotations

import base64
import copy
import re
import struct
import urllib.parse
from dataclasses import dataclass

from . import page
from ...draw.figure import FONT

SHORT_LINES = 30                 # a code block up to this long is never split across pages
SHORT_ROWS = 20                  # nor a table up to this many rows
WITH_HEADING = 900               # characters: a markdown cell this short goes with a landscape
                                 # picture after it onto its page (a heading stays with it)
HANG = 4                         # a continued line starts this much further in
PNG_DPI = 110                    # labkit.draw's pictures, when a PNG says nothing of its own
INPUT_ROOM = 60.0                # pt: a picture's cell input (a line or three) above it
PNG_SMALLEST_PT = FONT           # labkit.draw's smallest text (every figure's), in a PNG
_TOKEN_CHARS = re.compile(r"[0-9/:=_\-]")
_PROSE = ("jp-RenderedMarkdown", "jp-RenderedHTML")


@dataclass(frozen=True)
class Figure:
    """A picture as printed: `kind` svg or png, natural and printed width in points, the size
    its smallest text prints at, and whether it went on a landscape page."""
    kind: str
    natural: float
    printed: float
    smallest_pt: float
    landscape: bool


def wrap_points(text: str, width: int = page.CODE_COLUMNS) -> list[tuple[int, int, str]]:
    """Where the lines of `text` break to fit `width` characters: (start, end, indent) for each
    run of spaces text[start:end] that becomes a line break followed by `indent`. Breaks fall
    between tokens only; a token longer than a line is left whole."""
    out, offset = [], 0
    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip(" "))
        indent = " " * (lead + HANG if lead + HANG < width // 2 else HANG)
        start, col = 0, 0          # start of the current printed line, in `line`; its first column
        while col + len(line) - start > width:
            limit = start + width - col                     # first character that would not fit
            spaces = [m for m in re.finditer(r" +", line[:limit + 1]) if m.start() > max(start, lead)]
            if not spaces:                                  # one long token: break after it
                spaces = [m for m in re.finditer(r" +", line) if m.start() >= limit][:1]
                if not spaces:
                    break
            begin = spaces[-1].start()
            end = begin + len(re.match(r" +", line[begin:]).group())
            if end >= len(line):                            # only trailing spaces left
                break
            out.append((offset + begin, offset + end, indent))
            start, col = end, len(indent)
        offset += len(line) + 1
    return out


def _soup(markup: str):
    from bs4 import BeautifulSoup
    return BeautifulSoup(markup, "html.parser")


def _expand_tabs(pre) -> None:
    """Tabs in <pre> `pre` as the spaces they print as (to the next multiple of 8 columns)."""
    col = 0
    for node in list(pre.find_all(string=True)):
        out = []
        for ch in str(node):
            if ch == "\t":
                out.append(" " * (8 - col % 8))
                col += 8 - col % 8
            else:
                out.append(ch)
                col = 0 if ch == "\n" else col + 1
        text = "".join(out)
        if text != str(node):
            node.replace_with(text)


def _wrap_pre(soup, pre, width: int) -> None:
    """Break the long lines of <pre> `pre` (whatever spans highlight it) at `wrap_points`."""
    from bs4 import NavigableString
    _expand_tabs(pre)
    points = wrap_points(pre.get_text(), width)
    if not points:
        return
    starts = {s: (e, ind) for s, e, ind in points}
    drop = set()
    for s, e, _ in points:
        drop.update(range(s, e))
    offset = 0
    for node in list(pre.find_all(string=True)):
        text, parts, buf = str(node), [], ""
        for k, ch in enumerate(text):
            pos = offset + k
            if pos in starts:
                parts += [buf, "MARK", "\n" + starts[pos][1]]
                buf = ""
            if pos not in drop:
                buf += ch
        parts.append(buf)
        offset += len(text)
        if len(parts) == 1:
            continue
        for part in parts:
            if part == "MARK":
                node.insert_before(soup.new_tag("span", attrs={"class": "lk-cont"}))
            elif part:
                node.insert_before(NavigableString(part))
        node.extract()


def _tokens(soup, node) -> None:
    """Replace text `node` by its words, each that could break inside kept whole."""
    from bs4 import NavigableString
    pieces = re.split(r"(\s+)", str(node))
    if not any(_TOKEN_CHARS.search(p) and not p.isspace() for p in pieces):
        return
    for p in pieces:
        if p and not p.isspace() and _TOKEN_CHARS.search(p):
            span = soup.new_tag("span", attrs={"class": "lk-tok"})
            span.string = p
            node.insert_before(span)
        elif p:
            node.insert_before(NavigableString(p))
    node.extract()


def _inside(node, names=("pre", "svg", "script", "style")) -> bool:
    return any(p.name in names or "lk-tok" in (p.get("class") or []) for p in node.parents)


def _stack(soup, table) -> None:
    """A table whose cells hold code blocks, as blocks: each cell under its column's header."""
    heads = [th for th in table.select("thead th")] or [None]
    box = soup.new_tag("div", attrs={"class": "lk-stacked"})
    for tr in table.select("tbody tr") or table.select("tr"):
        for j, td in enumerate(tr.find_all("td", recursive=False)):
            head = heads[j] if j < len(heads) else None
            if head is not None and head.get_text(strip=True):
                h = soup.new_tag("div", attrs={"class": "lk-head"})
                for child in list(head.children):
                    h.append(copy.copy(child))
                box.append(h)
            cell = soup.new_tag("div")
            for child in list(td.children):
                cell.append(child.extract())
            box.append(cell)
    table.replace_with(box)


def _length(value: str | None) -> float | None:
    """An SVG length in points ("882.72pt", "100px", "300")."""
    m = re.match(r"\s*([0-9.]+)\s*(pt|px|in|mm|cm)?\s*$", value or "")
    if not m:
        return None
    scale = {"pt": 1, "px": 0.75, None: 0.75, "in": 72, "mm": page.PT_PER_MM, "cm": 10 * page.PT_PER_MM}
    return float(m.group(1)) * scale[m.group(2)]


def _svg_size(svg) -> tuple[float, float, float]:
    """(width pt, height pt, smallest text pt) of an inline <svg> at its drawn size."""
    box = [float(v) for v in re.split(r"[\s,]+", svg.get("viewbox", svg.get("viewBox", "")).strip()) if v]
    width, height = _length(svg.get("width")), _length(svg.get("height"))
    most = re.search(r"max-width\s*:\s*([^;]+)", svg.get("style", ""))
    if width is None and most and _length(most.group(1)) and len(box) == 4:   # fitted: width="100%"
        width = _length(most.group(1))
        height = width * box[3] / box[2]
    if width is None and len(box) == 4:
        width, height = box[2] * 0.75, box[3] * 0.75
    width, height = width or page.TEXT_WIDTH, height or page.TEXT_WIDTH / 2
    unit = width / box[2] if len(box) == 4 and box[2] else 0.75
    sizes = [float(v) for v in re.findall(r"font-size\s*[:=]\s*\"?([0-9.]+)", str(svg))]
    sizes += [float(v) for v in re.findall(r"font\s*:\s*(?:[a-z-]+\s+)*([0-9.]+)px", str(svg))]
    smallest = min(sizes) * unit if sizes else page.BODY_PT
    return width, height, smallest


def _png_size(src: str) -> tuple[float, float, float] | None:
    """(width pt, height pt, smallest text pt) of a data: PNG, from its header (pHYs: dots per inch)."""
    if not src.startswith("data:image/png;base64,"):
        return None
    data = base64.b64decode(src.split(",", 1)[1])
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    w, h = struct.unpack(">II", data[16:24])
    dpi = PNG_DPI
    at = data.find(b"pHYs")
    if at > 0:
        x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
        if unit == 1 and x:
            dpi = round(x * 0.0254)
    return w * 72 / dpi, h * 72 / dpi, PNG_SMALLEST_PT


def place(natural: float, height: float, smallest: float) -> tuple[float, bool]:
    """(printed width in points, landscape?) of a picture drawn `natural` points wide."""
    tall = page.TEXT_HEIGHT - INPUT_ROOM            # its cell's input prints on the same page
    if natural <= page.TEXT_WIDTH and height <= tall:
        return natural, False
    portrait = min(page.TEXT_WIDTH / natural, tall / height)
    if smallest * portrait >= page.MIN_FIGURE_PT:
        return natural * portrait, False
    alone = min(page.TEXT_WIDTH / natural, (page.TEXT_HEIGHT - 12) / height)   # a page of its own: its
    if smallest * alone >= page.MIN_FIGURE_PT:                          # input ends the page before
        return natural * alone, False                                   # (a tall picture: lk-tall)
    wide = min(1.0, page.LANDSCAPE_WIDTH / natural, (page.LANDSCAPE_HEIGHT - INPUT_ROOM) / height)
    return natural * max(wide, portrait), wide > portrait


def _landscape(cell) -> None:
    """Put `cell` on a landscape page, with the short markdown cell before it (its heading)."""
    _mark(cell, "lk-wide")
    before = cell.find_previous_sibling(class_="jp-Cell")
    if before is not None and "jp-MarkdownCell" in before.get("class", []) \
            and len(before.get_text()) <= WITH_HEADING:
        _mark(before, "lk-wide")


def inline_svg(data_uri: str, prefix: str) -> str | None:
    """The SVG of a data: URI as markup to place in the page (its text stays text, and can be
    measured in the PDF), its ids prefixed with `prefix` so that two pictures never share one."""
    head, _, body = data_uri.partition(",")
    if not head.startswith("data:image/svg+xml"):
        return None
    svg = base64.b64decode(body).decode() if head.endswith(";base64") else urllib.parse.unquote(body)
    if "<svg" not in svg:
        return None
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    return re.sub(r'(url\(#|href="#)([^)"]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)


TALL = 0.75   # a picture taller than this share of a page: its code is not kept with it


def _figures(soup) -> list[Figure]:
    found = []
    for k, img in enumerate(soup.select(".jp-RenderedSVG img, .jp-RenderedImage img")):
        svg = inline_svg(img.get("src", ""), f"lk{k}-")
        if svg is not None:
            img.replace_with(_soup(svg))
    for el in soup.select(".jp-RenderedSVG svg, .jp-RenderedImage img, .jp-RenderedHTML svg"):
        if el.name == "svg":
            if any(p.name == "svg" for p in el.parents):
                continue
            natural, height, smallest = _svg_size(el)
        else:
            size = _png_size(el.get("src", ""))
            if size is None:
                continue
            natural, height, smallest = size
        printed, landscape = place(natural, height, smallest)
        el["style"] = f"width: {printed:.1f}pt; height: auto;"
        for attr in ("width", "height"):
            if attr in el.attrs and el.name == "img":
                del el[attr]
        if el.name == "svg":
            el["width"], el["height"] = f"{printed:.1f}pt", f"{height * printed / natural:.1f}pt"
        holder = el.find_parent(class_="jp-OutputArea-child") or el.parent
        holder["class"] = (holder.get("class") or []) + ["lk-figure"]
        if landscape:
            _landscape(el.find_parent(class_="jp-Cell") or holder)
        elif height * printed / natural > TALL * page.TEXT_HEIGHT and el.find_parent(class_="jp-Cell"):
            _mark(el.find_parent(class_="jp-Cell"), "lk-tall")  # its code may end the page before
        found.append(Figure("svg" if el.name == "svg" else "png", round(natural, 1), round(printed, 1),
                            round(smallest * printed / natural, 2), landscape))
    return found


def _mark(el, name: str) -> None:
    classes = el.get("class") or []
    if name not in classes:
        el["class"] = classes + [name]


def typeset(main_html: str) -> tuple[str, list[Figure]]:
    """`main_html` (nbconvert's cells) made ready for paper; and the pictures in it, as printed."""
    soup = _soup(main_html)
    for table in soup.find_all("table"):
        if table.find("pre") and not table.find_parent("table"):
            _stack(soup, table)
        elif len(table.find_all("tr")) <= SHORT_ROWS:
            _mark(table, "lk-short")
    for pre in soup.find_all("pre"):
        if _inside(pre, ("svg",)):
            continue
        _wrap_pre(soup, pre, page.CODE_COLUMNS)
        if pre.get_text().count("\n") <= SHORT_LINES:
            _mark(pre, "lk-short")
    for code in soup.find_all(["code", "td", "th"]):
        if _inside(code):
            continue
        for node in list(code.find_all(string=True)):
            if not _inside(node):
                _tokens(soup, node)
    for box in soup.find_all(class_=list(_PROSE)):
        for node in list(box.find_all(string=True)):
            if node.parent.name not in ("code", "td", "th") and not _inside(node, ("pre", "svg", "script", "style", "code")):
                _tokens(soup, node)
    for tagged, name in (("celltag_instructor", "lk-instructor"), ("celltag_lk-solution", "lk-solution")):
        for el in soup.find_all(class_=tagged):
            _mark(el.find_parent(class_="jp-Cell") or el, name)
    for cell in soup.find_all(class_="jp-MarkdownCell"):
        blocks = [c for c in cell.select(".jp-RenderedMarkdown > *") if c.name]
        if blocks and re.fullmatch(r"h[1-6]", blocks[-1].name):
            _mark(cell, "lk-keep-next")
    for area in soup.find_all(class_="jp-Cell-outputWrapper"):
        if not area.find(["img", "svg"]) and area.get_text().count("\n") <= SHORT_LINES:
            _mark(area, "lk-short")
    figures = _figures(soup)
    anchors = soup.new_tag("nav", attrs={"class": "lk-anchors", "hidden": ""})
    for cell in soup.find_all(class_="jp-Cell"):
        if cell.get("id"):
            link = soup.new_tag("a", href="#" + cell["id"])
            anchors.append(link)
    soup.insert(0, anchors)
    return str(soup), figures
