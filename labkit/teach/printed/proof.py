"""Proofreading a printed handout from the PDF itself (poppler-utils), against its HTML:

    too_small(pdf, html)       words printed below the minimum of their kind (body, code, figure)
    smallest(pdf, html)        the smallest size of each kind of text
    picture_text(pdf)          the size the smallest text of each PNG picture prints at
    broken_tokens(pdf, html)   command words and addresses of the HTML's code not found whole
    half_blank(pdf)            pages more than half blank though the next block would have fit
    headings_last(pdf, html)   pages whose last line is a heading

A word's size is read from its box (pdftotext -bbox-layout: ascent + descent of the font,
DejaVu's 1.1636 em); which kind a word is, from the HTML: text of an SVG picture, of code
(pre, code), or of prose. How full a page is, from the page drawn at 30 dpi (pdftoppm).
"""
from __future__ import annotations

import functools
import html as htmlmod
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

from ...errors import LabkitError, MissingTool
from . import page

HEIGHT_PER_PT = 1.1636                 # DejaVu Sans and Sans Mono: (ascent + descent) / size
MINIMUM = {"body": page.MIN_BODY_PT, "code": page.MIN_CODE_PT, "figure": page.MIN_FIGURE_PT,
           "other": page.MIN_CODE_PT}
HEADING_PT = 11.0                      # headings print at least this large; body text below
DPI = 30
INK = 250                              # a grey below this is printed (light backgrounds too)
GAP_MM = 4.0                           # blank space that ends a block (cells are 4.5 mm apart)
_COMMANDISH = re.compile(r"\d\.\d|^-{1,2}[A-Za-z]|[/:]")


@dataclass(frozen=True)
class Word:
    """A word printed on page `page` (from 1), its box in points from the top left."""
    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    line: int

    @property
    def size(self) -> float:
        return (self.y1 - self.y0) / HEIGHT_PER_PT


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    except FileNotFoundError:
        raise MissingTool(f"proofreading a PDF needs {argv[0]}: apt-get install poppler-utils") from None
    except subprocess.CalledProcessError as e:
        raise LabkitError(f"{argv[0]} could not read {argv[-1]}: {e.stderr.strip()[:300]}") from None


def layout(pdf: str) -> tuple[list[Word], list[tuple[float, float]]]:
    """Every word of `pdf` with its box, and each page's (width, height) in points."""
    return _layout(pdf, os.stat(pdf).st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _layout(pdf: str, version: int) -> tuple[list[Word], list[tuple[float, float]]]:
    out = _run(["pdftotext", "-bbox-layout", pdf, "-"])
    words, sizes, line = [], [], 0
    for m in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)"|<line\b|<word xMin="([\d.]+)" '
                         r'yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', out):
        if m.group(1):
            sizes.append((float(m.group(1)), float(m.group(2))))
        elif m.group(0) == "<line":
            line += 1
        else:
            x0, y0, x1, y1 = (float(m.group(k)) for k in range(3, 7))
            words.append(Word(len(sizes), x0, y0, x1, y1, htmlmod.unescape(m.group(7)), line))
    return words, sizes


def kinds(markup: str) -> dict[str, set[str]]:
    """The words of an HTML page by kind: "figure" (SVG text), "code", "body", "heading"."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(markup, "html.parser")
    for el in soup(["style", "script", "title"]) + soup.select("a.anchor-link"):
        el.decompose()
    found = {"figure": set(), "code": set(), "body": set(), "heading": set()}
    for svg in soup.find_all("svg"):
        for text in svg.find_all("text"):
            found["figure"].update(bare(w) for w in text.get_text().split())
        svg.decompose()
    for code in soup.find_all(["pre", "code", "kbd", "samp"]):
        if not any(p.name in ("pre", "code", "kbd", "samp") for p in code.parents):
            found["code"].update(bare(w) for w in code.get_text().split())
    for code in soup.find_all(["pre", "code", "kbd", "samp"]):
        code.decompose()
    for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        found["heading"].add(" ".join(h.get_text().replace("¶", "").split()))
    found["body"].update(bare(w) for w in soup.get_text().split())
    return found


def in_text_area(word: Word, size: tuple[float, float]) -> bool:
    """True if `word` is printed in the text area of its page (not in a margin: the footer)."""
    top = page.MARGIN["top"] * page.PT_PER_MM
    bottom = size[1] - page.MARGIN["bottom"] * page.PT_PER_MM
    return word.y0 >= top - 2 and word.y1 <= bottom + 2


def bare(word: str) -> str:
    """`word` without the punctuation around it ("(172.18.0.1)," -> "172.18.0.1")."""
    return word.strip("()[]{}<>,.;:!?\"'") or word


def kind_of(word: str, found: dict[str, set[str]]) -> str:
    """The most lenient kind a printed word can be (a word of a picture may also be in code)."""
    for kind in ("figure", "code", "body"):
        if bare(word) in found[kind]:
            return kind
    return "other"


def too_small(pdf: str, markup: str) -> list[tuple[int, str, float, str]]:
    """(page, word, size, kind) of each word printed below its kind's minimum."""
    words, sizes = layout(pdf)
    found = kinds(markup)
    out = []
    for w in words:
        kind = kind_of(w.text, found)
        if in_text_area(w, sizes[w.page - 1]) and w.size < MINIMUM[kind] - 0.05:
            out.append((w.page, w.text, round(w.size, 2), kind))
    return out


def smallest(pdf: str, markup: str) -> dict[str, float]:
    """The smallest size (points) of each kind of text in `pdf`, and of PNG pictures' text."""
    words, sizes = layout(pdf)
    found, out = kinds(markup), {}
    for w in words:
        if in_text_area(w, sizes[w.page - 1]):
            kind = kind_of(w.text, found)
            out[kind] = min(out.get(kind, 99.0), round(w.size, 2))
    pictures = picture_text(pdf)
    if pictures:
        out["png"] = min(pictures)
    return out


def picture_text(pdf: str) -> list[float]:
    """For each PNG picture labkit drew: the size its smallest text prints at (from the
    picture's resolution on the page, pdfimages -list)."""
    from .typeset import PNG_DPI, PNG_SMALLEST_PT
    out = []
    for row in _run(["pdfimages", "-list", pdf]).splitlines()[2:]:
        cols = row.split()
        if len(cols) >= 14 and cols[2] == "image" and int(cols[3]) >= 200:
            out.append(round(PNG_SMALLEST_PT * PNG_DPI / float(cols[12]), 2))
    return out


def broken_tokens(pdf: str, markup: str) -> list[str]:
    """The command words and addresses in the HTML's code that the PDF does not hold whole."""
    words, _ = layout(pdf)
    printed = {w.text for w in words}
    wanted = {t for t in kinds(markup)["code"] if len(t) > 2 and _COMMANDISH.search(t)}
    return sorted(t for t in wanted if t not in printed and not any(t in p for p in printed))


def ink(pdf: str) -> list[tuple[bool, list[bool]]]:
    """Each page as (landscape?, for each row of its text area from the top: anything printed?)."""
    return _ink(pdf, os.stat(pdf).st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _ink(pdf: str, version: int) -> list[tuple[bool, list[bool]]]:
    with tempfile.TemporaryDirectory(prefix="labkit-proof-") as tmp:
        _run(["pdftoppm", "-gray", "-r", str(DPI), pdf, os.path.join(tmp, "p")])
        pages = []
        for name in sorted(os.listdir(tmp), key=lambda n: int(re.findall(r"\d+", n)[-1])):
            with open(os.path.join(tmp, name), "rb") as f:
                data = f.read()
            m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
            w, h = int(m.group(1)), int(m.group(2))
            pixels = data[m.end():]
            top = round(page.MARGIN["top"] / 25.4 * DPI)
            bottom = h - round(page.MARGIN["bottom"] / 25.4 * DPI)
            rows = [min(pixels[y * w:(y + 1) * w]) < INK for y in range(top, bottom)]
            pages.append((w > h, rows))
        return pages


def covered(rows: list[bool]) -> float:
    """How far down the text area something is printed, as a fraction of its height."""
    last = max((k for k, r in enumerate(rows) if r), default=-1)
    return (last + 1) / len(rows)


def first_block(rows: list[bool]) -> float:
    """The height of the first block on a page (down to the first blank GAP_MM), as a fraction."""
    gap = round(GAP_MM / 25.4 * DPI)
    start = next((k for k, r in enumerate(rows) if r), len(rows))
    blank = 0
    for k in range(start, len(rows)):
        blank = 0 if rows[k] else blank + 1
        if blank >= gap:
            return (k - blank + 1) / len(rows)
    return covered(rows)


def half_blank(pdf: str, starts: tuple[int, ...] = ()) -> list[tuple[int, float, float]]:
    """(page, fraction covered, next page's first block) of each page more than half blank
    where the next page's first block would have fit. Not counted: the last page, a page
    before one that turns (portrait, landscape), and a page before one of `starts` (a part
    of a booklet, a cheat sheet, which start on a page of their own)."""
    pages, out = ink(pdf), []
    for k, (wide, rows) in enumerate(pages[:-1]):
        number = k + 1
        if number + 1 in starts or pages[k + 1][0] != wide:
            continue
        c, nxt = covered(rows), first_block(pages[k + 1][1])
        if c < 0.5 and nxt < 1 - c - 0.03:
            out.append((number, round(c, 2), round(nxt, 2)))
    return out


def headings_last(pdf: str, markup: str) -> list[tuple[int, str]]:
    """(page, text) of each page whose last printed thing is a heading."""
    words, sizes = layout(pdf)
    heads = kinds(markup)["heading"]
    pages, out = ink(pdf), []
    for number, size in enumerate(sizes, 1):
        mine = [w for w in words if w.page == number and in_text_area(w, size)]
        if not mine or number == len(sizes):
            continue
        last = max(mine, key=lambda w: w.y1).line
        line = [w for w in mine if w.line == last]
        text = " ".join(w.text for w in line)
        if min(w.size for w in line) < HEADING_PT or not any(text in h for h in heads):
            continue
        rows = pages[number - 1][1]
        below = round((max(w.y1 for w in line) / 72 * 25.4 - page.MARGIN["top"] + 2) / 25.4 * DPI)
        if not any(rows[below:]):
            out.append((number, text))
    return out
