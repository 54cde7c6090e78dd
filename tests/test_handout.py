"""Handouts: offline HTML (nothing fetched from the network) and PDFs printed by headless
Chromium whose pages render (pdftoppm), in a student's and an instructor's edition. Printing the
stored outputs needs no root; running the notebooks first (the default of `labkit handout`) is
covered by the kernel test at the end. What the pages look like is measured in test_print."""
import json
import os
import re
import shutil
import subprocess

import pytest

from labkit.teach.printed import handout
from labkit.teach.replay import course
from labkit.errors import LabkitError

from harness import without_capabilities

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftoppm") is None,
                                    reason="apt-get install chromium poppler-utils")


def tiny_notebook(path, text="hello from a handout", png=None):
    outputs = [{"output_type": "stream", "name": "stdout", "text": text + "\n"}]
    if png:
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": png, "text/plain": "<Image>"}})
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}},
          "cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# A title\n\nSome *prose*."},
                    {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1,
                     "source": "print('hi')", "outputs": outputs}]}
    path.write_text(json.dumps(nb))
    return str(path)


# --- offline HTML ----------------------------------------------------------------------------

def test_offline_html_drops_every_script_and_style_from_the_network():
    html = ("<html><head><script src=\"https://cdn.example/require.js\"></script>"
            "<link rel=\"stylesheet\" href=\"http://cdn.example/x.css\">"
            "<script type=\"module\">const m = (await import(\"https://cdn.example/mermaid.mjs\")).default;</script>"
            "<script type=\"module\">import x from 'https://cdn.example/y.mjs';</script>"
            "<script>var keep = 1;</script></head><body><a href=\"https://example.org\">a link</a></body></html>")
    assert handout.external_references(html)
    out = handout.offline(html)
    assert handout.external_references(out) == []
    assert "var keep = 1" in out and "a link" in out       # local scripts and plain links stay
    assert 'id="labkit-handout"' in out                     # the print style is added


def test_every_course_notebook_converts_to_offline_html():
    import nbformat
    paths = course.notebooks()
    assert len(paths) >= 7
    for path in paths:
        html = handout.to_html(nbformat.read(path, as_version=4), os.path.basename(path))
        assert handout.external_references(html) == [], path
        assert "data:image/png;base64," in html, path       # diagrams embedded, not linked


def test_missing_notebook_and_missing_browser_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(LabkitError, match="no notebook at"):
        handout.build(str(tmp_path / "out"), [str(tmp_path / "nope.ipynb")], run=False)
    from labkit.teach.printed import printer
    monkeypatch.setattr(printer.shutil, "which", lambda name: None)
    with pytest.raises(LabkitError, match="apt-get install chromium"):
        handout.build(str(tmp_path / "out"), [tiny_notebook(tmp_path / "a.ipynb")], run=False)


# --- PDF -------------------------------------------------------------------------------------

def render_first_page(pdf, tmp_path) -> bytes:
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", pdf, str(tmp_path / "page")],
                   check=True, timeout=60)
    (page,) = [p for p in os.listdir(tmp_path) if p.startswith("page") and p.endswith(".png")]
    return (tmp_path / page).read_bytes()


@needs_chromium
def test_stored_outputs_print_to_a_pdf_whose_page_renders(tmp_path):
    nb = tiny_notebook(tmp_path / "01-tiny.ipynb")
    written = handout.build(str(tmp_path / "out"), [nb], run=False)
    relative = sorted(os.path.relpath(p, tmp_path / "out") for p in written)
    assert relative == sorted(f"{e}/{n}.{x}" for e in ("student", "instructor")
                              for n in ("01-tiny", "course", "cheatsheets") for x in ("html", "pdf"))
    pdf = str(tmp_path / "out" / "student" / "01-tiny.pdf")
    assert open(pdf, "rb").read(5) == b"%PDF-"
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
    assert "A4" in info
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True).stdout
    assert "hello from a handout" in text and "A title" in text
    png = render_first_page(pdf, tmp_path)
    assert png.startswith(b"\x89PNG") and len(png) > 2000


@needs_chromium
def test_a_course_notebook_prints_with_its_diagrams(tmp_path):
    path = [p for p in course.notebooks() if "bridge" in p][0]
    handout.build(str(tmp_path), [path], run=False)
    pdf = str(tmp_path / "instructor" / "03-bridge.pdf")
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True).stdout
    assert "bridge" in text and "bridge fdb" in text and "For the instructor" in text
    images = subprocess.run(["pdfimages", "-list", pdf], capture_output=True, text=True).stdout
    assert len(images.splitlines()) >= 4                     # header lines + the embedded pictures


def test_the_command_line_without_privileges_prints_stored_outputs_only(tmp_path):
    nb = tiny_notebook(tmp_path / "01-tiny.ipynb")
    run = without_capabilities("-m", "labkit.teach.printed.handout", "-o", str(tmp_path / "out"), nb,
                               timeout=120)
    assert run.returncode == 2 and "labkit needs root" in run.stderr and "Traceback" not in run.stderr


# --- the real thing: notebooks run, then printed ---------------------------------------------

@pytest.mark.kernel
@needs_chromium
def test_handout_runs_a_notebook_for_real_and_prints_it(tmp_path):
    from labkit import Lab
    from labkit.teach.printed import proof
    path = [p for p in course.notebooks() if "namespaces-and-veth" in p][0]
    said = []
    handout.build(str(tmp_path), [path], say=said.append)
    assert any(line.startswith("ran 01-namespaces-and-veth in ") for line in said), said
    for edition in ("student", "instructor"):
        pdf = str(tmp_path / edition / "01-namespaces-and-veth.pdf")
        html = open(pdf[:-4] + ".html").read()
        text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True).stdout
        assert "answered" in text and "Nothing of the lab is left" in text
        assert "data:image/png" not in html and "<svg" in html  # the pictures as SVG, text as text
        assert proof.too_small(pdf, html) == [] and proof.broken_tokens(pdf, html) == []
        assert render_first_page(pdf, tmp_path).startswith(b"\x89PNG")
    notes = subprocess.run(["pdftotext", str(tmp_path / "instructor" / "01-namespaces-and-veth.pdf"), "-"],
                           capture_output=True, text=True).stdout
    assert re.search(r"ran in \d+ s on this machine", " ".join(notes.split()))
    assert Lab().journal.exists() is False                  # the notebook took its lab down
