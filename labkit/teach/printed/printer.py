"""Printing HTML to PDF with Debian's headless Chromium, offline, and reading PDFs back.

    to_pdf(html_path, pdf_path)     A4 as the page's stylesheet says; backgrounds kept
    with printing(): ...            to_pdf keeps one Chromium open per thread (chromium.Browser)
    pages(pdf_path)                 how many pages (pdfinfo)
    destinations(pdf_path)          where each link target was printed (pdfinfo -dests)

Chromium runs in a network namespace of its own with no interfaces when labkit may make one
(root), so printing sends nothing anywhere; nbconvert's webpdf would download a browser.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading

from ...errors import LabkitError, MissingTool

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions", "--no-pdf-header-footer",
                  "--host-resolver-rules=MAP * ~NOTFOUND")


def browser() -> str:
    """Path of a Chromium to print PDFs with, or MissingTool naming the package."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise MissingTool("printing PDF handouts needs Chromium: apt-get install chromium")


def _isolated() -> list[str]:
    """A command prefix that runs a program in a new, empty network namespace, if we may."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True)
        if probe.returncode == 0:
            return [unshare, "--net"]
    return []


class _Session:
    """The Chromiums of a `printing()` block: one per thread that prints."""

    def __init__(self):
        self.local, self.all, self.lock = threading.local(), [], threading.Lock()

    def browser(self):
        from .chromium import Browser
        if getattr(self.local, "browser", None) is None:
            flags = tuple(f for f in CHROMIUM_FLAGS if f != "--no-pdf-header-footer")  # hangs a pipe
            self.local.browser = Browser(_isolated(), browser(), flags)
            with self.lock:
                self.all.append(self.local.browser)
        return self.local.browser

    def close(self) -> None:
        for b in self.all:
            b.close()


_session: list[_Session] = []


@contextlib.contextmanager
def printing():
    """Within this block, to_pdf prints with Chromiums kept open (closed at its end)."""
    if _session:
        yield
        return
    _session.append(_Session())
    try:
        yield
    finally:
        _session.pop().close()


def to_pdf(html_path: str, pdf_path: str) -> None:
    """Print `html_path` to `pdf_path` with headless Chromium (A4, backgrounds kept)."""
    pdf_path = os.path.abspath(pdf_path)
    if os.path.exists(pdf_path):
        os.unlink(pdf_path)
    if _session:
        _session[0].browser().print(html_path, pdf_path)
        _check(html_path, pdf_path, 0, "")
        return
    with tempfile.TemporaryDirectory(prefix="labkit-chromium-") as profile:
        argv = [*_isolated(), browser(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                f"--crash-dumps-dir={profile}", f"--print-to-pdf={pdf_path}",
                "file://" + os.path.abspath(html_path)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                                    env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise LabkitError(f"Chromium did not finish printing {html_path} within 180 s") from None
    _check(html_path, pdf_path, result.returncode, result.stderr)


def _check(html_path: str, pdf_path: str, code: int, said: str) -> None:
    if code != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        raise LabkitError(f"Chromium could not print {html_path} to PDF (exit {code}): "
                          f"{said.strip()[-500:]}")


def pages(pdf_path: str) -> int:
    """How many pages `pdf_path` has (pdfinfo, from poppler-utils)."""
    if shutil.which("pdfinfo") is None:
        raise MissingTool("counting a PDF's pages needs pdfinfo: apt-get install poppler-utils")
    out = subprocess.run(["pdfinfo", pdf_path], capture_output=True, text=True).stdout
    m = re.search(r"^Pages:\s+(\d+)", out, re.M)
    if not m:
        raise LabkitError(f"pdfinfo could not read {pdf_path}")
    return int(m.group(1))


def destinations(pdf_path: str) -> dict[str, tuple[int, float]]:
    """Where each element a link points to was printed: id -> (page, points from the page's
    top). Chromium names every link target in the PDF (pdfinfo -dests)."""
    if shutil.which("pdfinfo") is None:
        raise MissingTool("reading a PDF's pages needs pdfinfo: apt-get install poppler-utils")
    out = subprocess.run(["pdfinfo", "-dests", pdf_path], capture_output=True, text=True).stdout
    heights = {}
    sizes = subprocess.run(["pdfinfo", "-f", "1", "-l", "100000", pdf_path], capture_output=True,
                           text=True).stdout
    for m in re.finditer(r"^Page\s+(\d+) size:\s+[\d.]+ x ([\d.]+)", sizes, re.M):
        heights[int(m.group(1))] = float(m.group(2))
    found = {}
    for m in re.finditer(r'^\s*(\d+)\s+\[\s*XYZ\s+[-\d.]+\s+([-\d.]+)[^\]]*\]\s+"(.*)"\s*$', out, re.M):
        number = int(m.group(1))
        found[m.group(3)] = (number, heights.get(number, 842.0) - float(m.group(2)))
    return found
