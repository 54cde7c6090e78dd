"""Classroom handouts: execute the notebooks, write HTML and PDF with diagrams and captures embedded.

The PDF is the HTML printed by a headless Chromium from Debian (chromium package), which
works offline; nbconvert's webpdf would download a browser of its own and fails offline.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from .errors import LabkitError, MissingTool

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-pdf-header-footer")


def notebooks() -> list[str]:
    """The course notebooks in order."""
    return sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "[0-9]*.ipynb")))


def browser() -> str:
    """Path of a Chromium to print PDFs with, or MissingTool naming the package."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise MissingTool("printing PDF handouts needs Chromium: apt-get install chromium")


def execute(path: str, timeout: int = 300):
    """Run notebook `path` top to bottom in a fresh kernel; returns the executed notebook."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    return nb


def to_html(nb, title: str) -> str:
    """The executed notebook as one self-contained HTML page (images embedded)."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="classic")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def to_pdf(html_path: str, pdf_path: str) -> None:
    """Print `html_path` to `pdf_path` with headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        argv = [browser(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                f"--print-to-pdf={os.path.abspath(pdf_path)}", "file://" + os.path.abspath(html_path)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not os.path.exists(pdf_path):
        raise LabkitError(f"Chromium could not print {html_path} to PDF (exit {result.returncode}): "
                          f"{result.stderr.strip()[-500:]}")


def build(output_dir: str = "handouts", notebooks: list[str] | None = None,
          run: bool = True) -> list[str]:
    """Write NAME.html and NAME.pdf for each notebook into `output_dir`; returns the paths."""
    import nbformat
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in notebooks or globals()["notebooks"]():
        if not os.path.exists(path):
            raise LabkitError(f"no notebook at {path}")
        name = os.path.splitext(os.path.basename(path))[0]
        nb = execute(path) if run else nbformat.read(path, as_version=4)
        html_path = os.path.join(output_dir, name + ".html")
        with open(html_path, "w") as f:
            f.write(to_html(nb, name))
        pdf_path = os.path.join(output_dir, name + ".pdf")
        to_pdf(html_path, pdf_path)
        written += [html_path, pdf_path]
    return written
