"""Classroom handouts: run the notebooks, print a student's and an instructor's edition.

    labkit handout [-o DIR] [--stored] [--notebooks DIR] [NOTEBOOK...]   as root: runs each notebook for real

The notebooks: those named, else the course's (--notebooks DIR, $LABKIT_NOTEBOOKS, ./notebooks,
the ones that come with labkit: the rule of labkit.teach.replay.course).

DIR/student/ and DIR/instructor/ each get, per notebook, NAME.html and NAME.pdf (A4), then
course.pdf (title page, contents with page numbers, the notebooks in order, the cheat sheets)
and cheatsheets.pdf (one page per stage: the seed's commands and the commands to look at the
result), each beside its HTML. The student's edition has no solutions, answers or verdicts,
and a ruled box to write in where a solution was; the instructor's has them, with notes
(labkit.teach.printed.copies). Both come from one run of each instructor's notebook.

Each notebook runs top to bottom in a fresh kernel of this Python (the one labkit is installed
in), in the notebooks' directory, and takes the default lab up and down as it goes; pictures
are printed as SVG (labkit.teach.printed.vector). --stored prints the stored outputs (no root; the
pictures stay PNG). The HTML is one offline file with its print stylesheet (labkit.teach.printed.page),
so a browser's print dialog prints what the PDF shows. The PDF is that HTML printed by Debian's
headless Chromium (package chromium), which works offline, in a network namespace of its own
with no interfaces when labkit may make one (root).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ...errors import LabkitError
from ..replay import course
from . import page
from .printer import browser, printing, to_pdf

EDITIONS = ("student", "instructor")
PRINT_CELL = {"cell_type": "code", "id": "labkit-print", "metadata": {}, "outputs": [],
              "execution_count": None, "source": "import labkit.teach.printed.vector; labkit.teach.printed.vector.install()"}
TIMEOUT = 300
PRINTERS = 2                                    # Chromiums printing at once


def _kernel_manager():
    """A kernel manager that starts this very Python (where labkit is installed) as the kernel,
    whatever kernel named python3 the machine's Jupyter would pick."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    return KernelManager(kernel_name="labkit-this-python", kernel_spec_manager=ThisPython())


def _kernel_env() -> dict:
    """The kernel's environment: ours, with labkit's directory on PYTHONPATH (so a source
    checkout works as well as an installed labkit)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def execute(path: str, timeout: int = TIMEOUT):
    """Run notebook `path` top to bottom in a fresh kernel, pictures also as SVG; returns the
    executed notebook, with the run's length in seconds in metadata["labkit_seconds"].

    Raises LabkitError naming the notebook and the cell that failed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.from_dict(PRINT_CELL))
    client = NotebookClient(nb, km=_kernel_manager(), timeout=timeout, record_timing=True,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:       # the kernel's own chatter, shown on failure
        try:
            client.execute(env=_kernel_env(), stderr=log)
        except (CellExecutionError, CellTimeoutError, RuntimeError) as e:
            log.seek(0)
            said = [line for line in log.read().splitlines() if "WARNING" not in line][-5:]
            last = str(e).strip().splitlines()[-1:] or ["(no message)"]
            raise LabkitError(f"{os.path.basename(path)} failed while running, so no handout was "
                              f"written for it: {last[0][:300]}"
                              + (f" (kernel said: {' / '.join(said)[:300]})" if said else "")
                              + "; run it in JupyterLab to see the cell") from None
    nb.cells.pop(0)
    nb.metadata["labkit_seconds"] = round(time.monotonic() - started, 1)
    return nb


_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.I)
_EXTERNAL_IMPORT = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*(?:\bfrom\s+|\bimport\s*\(\s*)"
                              r"[\"']https?://(?:(?!</script>).)*</script>", re.I | re.S)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>", re.I)


def offline(html: str) -> str:
    """`html` without anything fetched from the network, and with the handout's print style."""
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_IMPORT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    if 'id="labkit-handout"' not in html:
        html = html.replace("</head>", f'<style id="labkit-handout">{page.STYLE}</style></head>', 1)
    return html


def external_references(html: str) -> list[str]:
    """Addresses that a browser would fetch for `html` (scripts, styles, imports): none, normally."""
    found = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](https?://[^\"']+)", html, re.I)
    found += re.findall(r"\bimport\b[^;\n]*?[\"'](https?://[^\"']+)", html)
    found += re.findall(r"@import\s+(?:url\()?[\"']?(https?://[^\"')]+)", html)
    return found


def title_of(nb, default: str) -> str:
    """The notebook's title: the first heading of its first markdown cell."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", cell.get("source", ""), re.M)
            return m.group(1).strip() if m else default
    return default


def cells_html(nb):
    """(the notebook's cells as paper-ready HTML, its pictures as printed: typeset.Figure)."""
    from nbconvert import HTMLExporter

    from .typeset import typeset
    exporter = HTMLExporter(template_name="lab")
    full, _ = exporter.from_notebook_node(nb)
    m = re.search(r"<main>(.*)</main>", full, re.S)
    return typeset(offline_fragment(m.group(1) if m else full))


def offline_fragment(markup: str) -> str:
    """A piece of HTML without scripts, styles or links fetched from the network."""
    return _EXTERNAL_LINK.sub("", _EXTERNAL_IMPORT.sub("", _EXTERNAL_SCRIPT.sub("", markup)))


def to_html(nb, title: str, footer: str = "", kind: str = "") -> str:
    """The notebook as one self-contained, offline HTML page for paper (images embedded)."""
    return offline(page.page(title, cells_html(nb)[0], footer or title, kind))


def _document(title: str, footer: str, kind: str, main: str) -> str:
    return page.page(title, main, footer, kind)


def _write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def _cheat_sheets(dirs: dict[str, str], sheets: str) -> list[str]:
    """cheatsheets.html and .pdf in each edition's directory (the same: printed once)."""
    written = []
    for edition in EDITIONS:
        html_path = _write(os.path.join(dirs[edition], "cheatsheets.html"),
                           page.page("Cheat sheets", sheets, "labkit · cheat sheets", "lk-sheets"))
        pdf_path = os.path.join(dirs[edition], "cheatsheets.pdf")
        if written:
            shutil.copyfile(written[1], pdf_path)
        else:
            to_pdf(html_path, pdf_path)
        written += [html_path, pdf_path]
    return written


def _small_figures(name: str, figures, say) -> None:
    for k, fig in enumerate(figures, 1):
        if fig.smallest_pt < page.MIN_FIGURE_PT:
            say(f"note: picture {k} of {name} prints its smallest text at {fig.smallest_pt:.2f} pt "
                f"({'about, ' if fig.kind == 'png' else ''}< {page.MIN_FIGURE_PT} pt) even {'on a landscape page' if fig.landscape else 'at full width'}: "
                f"it is drawn {fig.natural / 72:.1f} in wide; labkit.draw should draw it narrower")


def build(output_dir: str = "handouts", notebooks: list[str] | None = None, run: bool = True,
          say=None) -> list[str]:
    """Write both editions of each notebook, the booklets and the cheat sheets into
    `output_dir`/student and `output_dir`/instructor; returns the paths written.

    With run=False the stored outputs are printed as they are (no root needed for that).
    `say(line)` is told of each notebook run and of pictures too wide to print well."""
    import nbformat

    from . import booklet, cheatsheet, copies, pagination
    from .typeset import typeset
    say = say or (lambda line: None)
    paths = list(notebooks or course.notebooks())
    for path in paths:
        if not os.path.exists(path):
            raise LabkitError(f"no notebook at {path}")
    browser()                                   # before running anything: is Chromium there?
    dirs = {e: os.path.join(output_dir, e) for e in EDITIONS}
    try:
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise LabkitError(f"cannot create {output_dir}: {e.strerror}; choose another -o DIR") from None
    written, pending = [], []
    with printing(), ThreadPoolExecutor(PRINTERS) as printers:
        for path in paths:
            name = os.path.splitext(os.path.basename(path))[0]
            nb = execute(path) if run else nbformat.read(path, as_version=4)
            seconds = nb.metadata.get("labkit_seconds")
            if seconds is not None:
                say(f"ran {name} in {seconds:.0f} s")
            title = title_of(nb, name)
            made = {"student": copies.student(nb, name), "instructor": copies.instructor(nb, seconds)}
            for edition in EDITIONS:
                main, figures = cells_html(nbformat.from_dict(made[edition]))
                if edition == "student":
                    _small_figures(name, figures, say)
                html_path = os.path.join(dirs[edition], name + ".html")
                pdf_path = os.path.join(dirs[edition], name + ".pdf")
                document = functools.partial(_document, title, f"{title} · {edition}'s edition",
                                             f"lk-edition-{edition}")
                _write(html_path, document(main))
                pending.append((edition, booklet.Part(name, title, main, pdf_path),
                                printers.submit(pagination.settle, html_path, pdf_path, main, document)))
                written += [html_path, pdf_path]
        sheets = typeset(cheatsheet.body())[0]
        written += _cheat_sheets(dirs, sheets)
        parts = {e: [] for e in EDITIONS}
        for edition, part, job in pending:        # as printed: cells may have moved (pagination)
            parts[edition].append(dataclasses.replace(part, main=job.result()))
        for edition in EDITIONS:
            parts[edition].append(booklet.Part("cheatsheets", "Cheat sheets", sheets,
                                               os.path.join(dirs[edition], "cheatsheets.pdf")))
        books = [printers.submit(booklet.write, dirs[e], e, parts[e], run) for e in EDITIONS]
        for book in books:
            written += book.result()
    return written


def summary(output_dir: str, written: list[str]) -> str:
    """One line per edition: where its files are and what they are."""
    lines = []
    for edition in EDITIONS:
        mine = [p for p in written if os.path.dirname(p) == os.path.join(output_dir, edition)]
        notebooks = sum(p.endswith(".pdf") for p in mine) - 2
        lines.append(f"wrote {os.path.join(output_dir, edition)}/: {notebooks} notebooks (HTML and "
                     f"A4 PDF), course.pdf (the booklet), cheatsheets.pdf")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m labkit.teach.printed.handout [-o DIR] [--stored] [NOTEBOOK...]`."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m labkit.teach.printed.handout", description=__doc__.split("\n")[0])
    p.add_argument("-o", dest="output", default="handouts", metavar="DIR")
    p.add_argument("--stored", action="store_true",
                   help="print the stored outputs instead of running the notebooks (no root needed)")
    p.add_argument("--notebooks", dest="notebook_dir", metavar="DIR",
                   help="the course's notebooks (default: as labkit.teach.replay.course finds them)")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    args = p.parse_args(argv)
    try:
        if not args.stored:
            from ...kernel import privilege
            privilege.require()
        paths = args.notebooks or course.notebooks(args.notebook_dir)
        written = build(args.output, paths, run=not args.stored, say=print)
        print(summary(args.output, written))
    except LabkitError as e:
        print(f"labkit handout: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
