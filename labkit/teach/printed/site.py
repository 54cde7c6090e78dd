"""The course as a small static website: the student edition with its recorded outputs.

    labkit site -o DIR [--binder URL] [--notebooks DIR] [NOTEBOOK...]   (build(DIR, notebooks, binder))

writes, from the notebooks (default: the course's, in the order of their names, found by the
rule of labkit.teach.replay.course: --notebooks DIR, $LABKIT_NOTEBOOKS, ./notebooks, those
that come with labkit):

    DIR/index.html            the course: each notebook in order, its title and first sentence
    DIR/NN-name.html          each notebook's student edition as a page, with the outputs
                              recorded on a real kernel (pictures embedded as data URIs; a
                              labkit figure's text, its text/plain, under its picture, folded:
                              `with_text`), dated, with links to the previous and next
    DIR/notebooks/NN-name.ipynb   the student edition, to download and run in a VM (or Binder)
    DIR/style.css             the one style sheet (and the code colours)

Nothing is fetched from the network when a page is read: no script at all, no style or font
from elsewhere (`external_references` finds any), so DIR can be published as it is (a
repository's pages, any web server, a USB stick). No root needed: nothing is run.
"""
from __future__ import annotations

import html
import json
import os
import re

from ...errors import BadValue
from ..replay import stored_outputs
from .editions import student
from ..replay import course
from .stored import clean, dumps

CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem;
       color: #222; line-height: 1.5; }
nav { display: flex; justify-content: space-between; font-size: 90%; margin: .5rem 0; }
a { color: #0a5ea8; }
.recorded { color: #666; font-style: italic; font-size: 90%; border-left: 3px solid #c90;
            padding-left: 6px; }
.prompt, .anchor-link { display: none; }
.cell { margin: .6rem 0; }
.input_area { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px; }
.input_area pre, .output_text pre { margin: 0; padding: .4rem .6rem; overflow-x: auto;
            font-size: 85%; line-height: 1.35; }
.output_text pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.output_wrapper { border-left: 3px solid #d0d7de; margin-top: .2rem; }
.output_png img, .output_svg svg, .output_subarea img { max-width: 100%; height: auto; }
.output_html, .rendered_html table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 85%; }
th, td { border: 1px solid #d0d7de; padding: 2px 6px; text-align: left; }
ol.course li { margin: .5rem 0; }
.figure details { font-size: 85%; color: #444; }
"""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def title_of(nb: dict, default: str) -> str:
    """The notebook's first markdown heading, without its #s (else `default`)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def summary_of(nb: dict) -> str:
    """The first sentence of the first paragraph after the title (plain text)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            paragraphs = [p for p in re.split(r"\n\s*\n", _source(cell))
                          if p.strip() and not p.lstrip().startswith(("#", "<!--"))]
            if paragraphs:
                text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(paragraphs[0].split()))
                return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return ""


_EXTERNAL = re.compile(r"<script\b[^>]*>|<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>|"
                       r"@import\b[^;]*|url\(\s*[\"']?(?:https?:)?//[^)]*\)|"
                       r"<(?:img|iframe|embed|object|source|video|audio)\b[^>]*\b(?:src|data)=[\"']?(?:https?:)?//[^>]*>",
                       re.I)


def external_references(text: str) -> list[str]:
    """What in an HTML page or style sheet would run a script or fetch from the network."""
    return _EXTERNAL.findall(text)


def with_text(nb: dict) -> dict:
    """`nb` (a copy) where each stored picture that has a text of its own (a labkit figure:
    labkit.draw.figure.Figure, whose text/plain says what it shows) is an HTML output: the
    picture (its text's first line as its alt), then its text under "as text", folded. Other
    outputs are left as they are."""
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            png, text = data.get("image/png"), data.get("text/plain")
            text = "".join(text) if isinstance(text, list) else text
            if png and text and "text/html" not in data and not text.startswith("<"):
                png = "".join(png) if isinstance(png, list) else png
                alt = html.escape(text.splitlines()[0], quote=True)
                data["text/html"] = (f'<div class="figure"><img alt="{alt}" src="data:image/png;'
                                     f'base64,{png.strip()}"><details><summary>as text</summary><pre>'
                                     f"{html.escape(text)}</pre></details></div>")
    return nb


def _body(nb: dict) -> str:
    """The notebook's cells as HTML (nbconvert's basic template: no script, no style)."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    config = Config()
    config.HighlightMagicsPreprocessor.languages = {"%%lab": "bash"}   # shell lines, as typed
    config.CoalesceStreamsPreprocessor.enabled = True      # a %%lab cell's lines: one block
    exporter = HTMLExporter(template_name="basic", config=config)
    body, _ = exporter.from_notebook_node(nbformat.reads(json.dumps(nb), as_version=4))
    return body


def _page(title: str, body: str, nav: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{html.escape(title)}</title>\n<link rel="stylesheet" href="style.css">\n'
            f"</head><body>\n{nav}\n{body}\n{nav}\n</body></html>\n")


def _nav(pages: list[tuple[str, str]], i: int) -> str:
    prev = f'<a href="{pages[i - 1][0]}">&larr; {html.escape(pages[i - 1][1])}</a>' if i else "<span></span>"
    nxt = (f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} &rarr;</a>'
           if i + 1 < len(pages) else "<span></span>")
    return f'<nav>{prev}<a href="index.html">the course</a>{nxt}</nav>'


def _run_it(binder: str, download: str = "") -> str:
    ways = [f'<a href="{html.escape(download)}">download the notebook</a> and run it as root in a '
            "Linux VM (see the README)" if download else
            "download a notebook and run it as root in a Linux VM (see the README)"]
    if binder:
        ways.append(f'open it on <a href="{html.escape(binder)}">Binder</a>, where cells that need '
                    "the kernel show these recorded outputs and the others run")
    return "To run it yourself: " + "; or ".join(ways) + "."


def build(outdir: str, paths: list[str] | None = None, binder: str = "") -> list[str]:
    """Write the course site into `outdir` (see the module docstring); returns the files
    written, index first. BadValue if there is no notebook; an instructor's notebook is read,
    never changed."""
    paths = paths or course.notebooks()
    books = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            nb = clean(student(json.load(f), path))
        name = os.path.splitext(os.path.basename(path))[0]
        books.append((name, nb, title_of(nb, name), stored_outputs.recorded_on(path)))
    try:
        os.makedirs(os.path.join(outdir, "notebooks"), exist_ok=True)
    except OSError as e:
        raise BadValue(f"cannot write the site into {outdir}: {e.strerror}; choose another -o DIR") from None
    written = [os.path.join(outdir, "index.html")]
    pages = [(f"{name}.html", title) for name, _, title, _ in books]
    for i, (name, nb, title, date) in enumerate(books):
        download = f"notebooks/{name}.ipynb"
        note = (f'<p class="recorded">The outputs below were recorded on a real kernel on {date}. '
                f"{_run_it(binder, download)}</p>")
        page = _page(title, note + _body(with_text(nb)), _nav(pages, i))
        written.append(_write(os.path.join(outdir, pages[i][0]), page))
        written.append(_write(os.path.join(outdir, download), dumps(nb)))
    items = "".join(f'<li><a href="{page}">{html.escape(title)}</a><br><small>{html.escape(summary_of(nb))}'
                    f' &middot; <a href="notebooks/{name}.ipynb">notebook</a></small></li>'
                    for (name, nb, title, _), (page, _) in zip(books, pages))
    index = (f"<h1>Container networking on the real kernel</h1>\n<p>The course's notebooks in order, "
             f"each with the outputs recorded when it last ran on a real kernel: namespaces, veth "
             f"pairs, a bridge, routing and NAT, stage by stage, with the packets that cross each "
             f"interface.</p>\n<ol class=\"course\">{items}</ol>\n<p class=\"recorded\">"
             f"{_run_it(binder)}</p>")
    _write(written[0], _page("labkit: the course", index))
    written.append(_write(os.path.join(outdir, "style.css"), CSS + _code_colours()))
    return written


def _code_colours() -> str:
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(style="default").get_style_defs(".highlight")


def _write(path: str, text: str) -> str:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise BadValue(f"cannot write {path}: {e.strerror}; choose another -o DIR") from None
    return path

