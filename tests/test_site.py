"""`labkit site -o DIR`: the course's student edition as a static website, with the outputs
recorded on a real kernel, that fetches nothing from the network (labkit.teach.printed.site)."""
import glob
import html
import json
import os
import re
import subprocess
import sys

import pytest

from labkit.teach.printed import editions, stored, site

from harness import without_capabilities

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "[0-9]*.ipynb")))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    return str(out), site.build(str(out))


def pictures(outputs):
    return sum(1 for o in outputs if any(m in o.get("data", {}) for m in ("image/png", "image/svg+xml")))


def test_the_index_lists_every_notebook_in_order_with_its_title(built):
    out, written = built
    assert written[0] == os.path.join(out, "index.html")
    index = open(written[0]).read()
    titles = []
    for path in NOTEBOOKS:
        with open(path) as f:
            titles.append(html.escape(site.title_of(editions.student(json.load(f)), "")))  # the site is the student's
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', index)
    assert [page for page, _ in links] == [os.path.basename(p)[:-6] + ".html" for p in NOTEBOOKS]
    assert [title for _, title in links] == titles and all(titles)


def test_each_page_is_the_student_edition_with_its_recorded_outputs(built):
    out, _ = built
    for path in NOTEBOOKS:
        name = os.path.basename(path)[:-6]
        page = open(os.path.join(out, f"{name}.html")).read()
        with open(path) as f:
            edition = editions.student(json.load(f), path)
        code = [c for c in edition["cells"] if c["cell_type"] == "code"]
        kept = sum(pictures(c["outputs"]) for c in code)
        # a picture is an <img> with a data URI (a labkit figure: with its text under it,
        # folded), or an SVG drawn inline where an output's HTML form carries it
        shown = (len(re.findall(r'<img [^>]*src="data:image/(?:png|svg\+xml);base64,', page))
                 + page.count("<svg "))
        assert shown == kept, (name, shown, kept)
        tables = sum(1 for c in code for o in c["outputs"] if "<table" in "".join(o.get("data", {}).get("text/html", "")))
        assert page.count("<table") >= tables, name
        assert "BEGIN SOLUTION" not in page and f"recorded on a real kernel on {site.stored_outputs.recorded_on(path)}" in page
        stored_nb = os.path.join(out, "notebooks", f"{name}.ipynb")
        assert stored.is_clean(stored_nb)
        assert json.load(open(stored_nb))["cells"] == json.loads(stored.dumps(stored.clean(edition)))["cells"]


def test_nothing_is_fetched_from_the_network_and_every_link_resolves(built):
    out, written = built
    for path in written:
        if path.endswith((".html", ".css")):
            text = open(path).read()
            assert site.external_references(text) == [], path
            for href in re.findall(r'(?:href|src)="([^"#][^"]*)"', text):
                if not href.startswith(("http://", "https://", "data:")):
                    assert os.path.isfile(os.path.join(out, href)), (path, href)
    size = sum(os.path.getsize(p) for p in written)
    print(f"\nsite: {len(written)} files, {size / 1e6:.1f} MB")


def test_external_references_finds_what_would_fetch_or_run():
    for bad in ('<script src="https://cdn.example/require.js"></script>', "<script>alert(1)</script>",
                '<link rel="stylesheet" href="https://fonts.example/css">', "@import url(x.css);",
                'body { background: url("//cdn.example/a.png") }', '<img src="https://x.example/a.png">'):
        assert site.external_references(bad), bad
    assert site.external_references('<a href="https://example.org/">a link</a> <link href="style.css">') == []


def test_an_svg_figure_stays_svg(tmp_path):
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>'
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# 01 · A drawing\n\nIt is drawn. Then more."},
        {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, "source": "draw()",
         "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": svg,
                                                                              "text/plain": "<figure>"}}]}]}
    path = tmp_path / "01-drawing.ipynb"
    path.write_text(json.dumps(nb))
    site.build(str(tmp_path / "out"), [str(path)])
    page = (tmp_path / "out" / "01-drawing.html").read_text()
    import base64
    data = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page)   # vector, embedded
    assert data and "<rect" in base64.b64decode(data.group(1)).decode() and "image/png" not in page
    index = (tmp_path / "out" / "index.html").read_text()
    assert "01 · A drawing" in index and "It is drawn." in index and "Then more" not in index


@pytest.mark.kernel
def test_the_site_command_needs_no_privileges(tmp_path):
    result = without_capabilities("-m", "labkit", "site", "-o", str(tmp_path / "site"), "--binder",
                                  "https://mybinder.org/v2/gh/o/r/HEAD", timeout=300,
                                  LABKIT_RUN_DIR=str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wrote {tmp_path / 'site' / 'index.html'}" in result.stdout
    assert 'href="https://mybinder.org/v2/gh/o/r/HEAD"' in (tmp_path / "site" / "index.html").read_text()
    bad = subprocess.run([sys.executable, "-m", "labkit", "site", "-o", "/proc/no/site"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("labkit: error: cannot write the site") \
        and "Traceback" not in bad.stderr, bad.stderr


def test_a_figure_shows_its_text_under_its_picture(built):
    """A labkit figure's stored text (its text/plain) is folded under its picture; other
    pictures and outputs are left as they are."""
    out, _ = built
    page = open(os.path.join(out, "03-bridge.html")).read()
    shown = re.findall(r'<div class="figure"><img alt="[^"]+" src="data:image/png;base64,[^"]+"\s*/?>'
                       r"<details><summary>as text</summary><pre>([^<]*)</pre>", page)
    assert any(t.startswith("stage bridge  -  default lab") for t in shown)      # lesson.draw
    assert any(t.startswith("ping from netns0 to 172.18.0.20") for t in shown)   # a trace's ladder
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {"image/png": "iVBO", "text/plain": "<IPython.core.display.Image object>"}},
        {"output_type": "display_data", "data": {"image/png": "iVBO", "text/plain": "a & b"}}]}]}
    first, second = site.with_text(nb)["cells"][0]["outputs"]
    assert "text/html" not in first["data"] and "<pre>a &amp; b</pre>" in second["data"]["text/html"]
