"""Classroom handouts: execute the notebooks, write HTML and PDF with diagrams and captures embedded.

    labkit handout [-o DIR] [NOTEBOOK...]      as root: runs each notebook for real, then prints it

Each notebook runs top to bottom in a fresh kernel of this Python (the one labkit is installed
in), in the notebooks' directory, and takes the default lab up and down as it goes. The HTML is
one self-contained file: pictures are embedded, and the scripts that nbconvert would load from
the internet (require.js, jQuery, MathJax, mermaid) are left out, as the notebooks need none of
them. The PDF is that HTML printed by Debian's headless Chromium (package chromium), which works
offline; nbconvert's webpdf would download a browser of its own. Chromium runs in a network
namespace of its own with no interfaces when labkit may make one (root), so printing sends
nothing anywhere.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from ..errors import LabkitError, MissingTool

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "notebooks")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions", "--no-pdf-header-footer",
                  "--host-resolver-rules=MAP * ~NOTFOUND")
PRINT_CSS = """
<style id="labkit-handout">
  @page { size: A4; margin: 12mm 11mm; }
  body { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  pre, .jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  .jp-OutputArea-output pre { font-size: 7.5pt; line-height: 1.3; }
  .jp-OutputArea-output img, .jp-RenderedImage img { max-width: 100%; height: auto; }
  .jp-InputPrompt, .jp-OutputPrompt { display: none; }
  .jp-Cell { break-inside: avoid-page; }
  .jp-RenderedHTMLCommon table { font-size: 85%; }
</style>
"""
TIMEOUT = 300


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
    """Run notebook `path` top to bottom in a fresh kernel; returns the executed notebook.

    Raises LabkitError naming the notebook and the cell that failed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=_kernel_manager(), timeout=timeout,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
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
    return html.replace("</head>", PRINT_CSS + "</head>", 1)


def external_references(html: str) -> list[str]:
    """Addresses that a browser would fetch for `html` (scripts, styles, imports): none, normally."""
    found = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](https?://[^\"']+)", html, re.I)
    found += re.findall(r"\bimport\b[^;\n]*?[\"'](https?://[^\"']+)", html)
    found += re.findall(r"@import\s+(?:url\()?[\"']?(https?://[^\"')]+)", html)
    return found


def to_html(nb, title: str) -> str:
    """The executed notebook as one self-contained, offline HTML page (images embedded)."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return offline(body)


def _isolated() -> list[str]:
    """A command prefix that runs a program in a new, empty network namespace, if we may."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True)
        if probe.returncode == 0:
            return [unshare, "--net"]
    return []


def to_pdf(html_path: str, pdf_path: str) -> None:
    """Print `html_path` to `pdf_path` with headless Chromium (A4, backgrounds kept)."""
    pdf_path = os.path.abspath(pdf_path)
    if os.path.exists(pdf_path):
        os.unlink(pdf_path)
    with tempfile.TemporaryDirectory(prefix="labkit-chromium-") as profile:
        argv = [*_isolated(), browser(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                f"--crash-dumps-dir={profile}", f"--print-to-pdf={pdf_path}",
                "file://" + os.path.abspath(html_path)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                                    env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise LabkitError(f"Chromium did not finish printing {html_path} within 180 s") from None
    if result.returncode != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        raise LabkitError(f"Chromium could not print {html_path} to PDF (exit {result.returncode}): "
                          f"{result.stderr.strip()[-500:]}")


def build(output_dir: str = "handouts", notebooks: list[str] | None = None,
          run: bool = True) -> list[str]:
    """Write NAME.html and NAME.pdf for each notebook into `output_dir`; returns the paths.

    With run=False the stored outputs are printed as they are (no root needed for that)."""
    import nbformat
    paths = list(notebooks or globals()["notebooks"]())
    if not paths:
        raise LabkitError(f"no notebooks to print (looked in {NOTEBOOK_DIR})")
    for path in paths:
        if not os.path.exists(path):
            raise LabkitError(f"no notebook at {path}")
    browser()                                   # before running anything: is Chromium there?
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise LabkitError(f"cannot create {output_dir}: {e.strerror}; choose another -o DIR") from None
    written = []
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        nb = execute(path) if run else nbformat.read(path, as_version=4)
        html_path = os.path.join(output_dir, name + ".html")
        with open(html_path, "w") as f:
            f.write(to_html(nb, name))
        pdf_path = os.path.join(output_dir, name + ".pdf")
        to_pdf(html_path, pdf_path)
        written += [html_path, pdf_path]
    return written


def main(argv: list[str] | None = None) -> int:
    """`python -m labkit.teach.handout [-o DIR] [--stored] [NOTEBOOK...]`."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m labkit.teach.handout", description=__doc__.split("\n")[0])
    p.add_argument("-o", dest="output", default="handouts", metavar="DIR")
    p.add_argument("--stored", action="store_true",
                   help="print the stored outputs instead of running the notebooks (no root needed)")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    args = p.parse_args(argv)
    try:
        if not args.stored:
            from ..kernel import privilege
            privilege.require()
        for path in build(args.output, args.notebooks or None, run=not args.stored):
            print(f"wrote {path}")
    except LabkitError as e:
        print(f"labkit handout: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
