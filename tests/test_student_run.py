"""The student edition of every notebook, run top to bottom as root on a real kernel with none of
its tasks done (the solutions are stubs): no cell raises, and each practised stage's check says
"not done yet" where the student has not typed the commands. The notebooks use the default lab:
it is taken down after each run."""
from __future__ import annotations

import glob
import json
import os
import sys

import pytest

from labkit import Lab
from labkit.teach.printed import editions
from labkit.teach.replay.course import directory as notebooks_dir

pytestmark = pytest.mark.kernel

NOTEBOOKS = sorted(glob.glob(os.path.join(notebooks_dir(), "[0-9]*.ipynb")))


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A Jupyter kernel of this Python (as root, like the classroom VM's)."""
    spec = tmp_path / "jupyter" / "kernels" / "here"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "here", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    yield "here"
    Lab().down()


def texts(nb) -> str:
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text", "")))
            out += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(out)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p)[:-6] for p in NOTEBOOKS])
def test_the_students_edition_runs_top_to_bottom_with_its_tasks_undone(kernel, path):
    import nbformat
    from nbclient import NotebookClient
    with open(path) as f:
        instructor = json.load(f)
    nb = nbformat.reads(json.dumps(editions.student(instructor, path)), as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=120,     # a cell that raises fails the run
                   resources={"metadata": {"path": notebooks_dir()}}).execute()
    said = texts(nb)
    assert "Traceback" not in said
    practised = "practice(" in "".join("".join(c["source"]) for c in instructor["cells"])
    if practised and editions.BEGIN in json.dumps(instructor):
        assert "not done yet" in said, os.path.basename(path)
