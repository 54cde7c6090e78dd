"""The course's notebooks as stored: free of execution noise, and their student editions.

`python -m labkit.teach.notebook clean FILE...` strips what a notebook picks up from being run
(timing and UI metadata, widget state; execution counts are renumbered 1, 2, 3... because
nbval only compares cells that have one) and keeps outputs, which nbval compares;
`check FILE...` exits 1 if a notebook is not clean. `student OUTDIR [FILE...]` writes the
student edition of each notebook (default: the course's, labkit.teach.replay.course) into
OUTDIR (see editions); `labkit editions -o DIR` writes both editions (write_editions).
"""
from __future__ import annotations

import json
import os
import sys

from ...errors import BadValue, LabkitError
from ..replay import course

KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")
KEEP_CELL_METADATA = ("tags",)


def clean(nb: dict) -> dict:
    """The notebook without execution noise (outputs are kept: nbval compares them)."""
    nb = json.loads(json.dumps(nb))
    meta = nb.get("metadata", {})
    nb["metadata"] = {k: meta[k] for k in KEEP_NOTEBOOK_METADATA if k in meta}
    if "language_info" in nb["metadata"]:
        nb["metadata"]["language_info"] = {"name": nb["metadata"]["language_info"].get("name", "python")}
    count = 0
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: cell["metadata"][k] for k in KEEP_CELL_METADATA
                            if k in cell.get("metadata", {})}
        cell.pop("id", None) if nb.get("nbformat_minor", 0) < 5 else None
        if cell["cell_type"] == "code":
            # nbval compares only cells with an execution count (an "unrun" cell with outputs
            # is an error), so counts stay, renumbered 1, 2, 3... in order: runs leave no trace
            count += 1
            cell["execution_count"] = count
            for output in cell.get("outputs", []):
                if "execution_count" in output:
                    output["execution_count"] = count
                output.get("metadata", {}).clear() if output.get("output_type") != "stream" else None
                data = output.get("data", {})
                data.pop("application/vnd.jupyter.widget-view+json", None)
    return nb


def dumps(nb: dict) -> str:
    """Serialise a notebook the way it is stored in the repository (stable, diff-friendly)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def is_clean(path: str) -> bool:
    """True if the notebook at `path` is stored exactly as `clean` would write it."""
    with open(path) as f:
        text = f.read()
    return text == dumps(clean(json.loads(text)))


def write_student(outdir: str, paths: list[str] | None = None) -> list[str]:
    """Write the student edition of each notebook in `paths` (default: the course's, found as
    labkit.teach.replay.course says) into `outdir`, stored clean; returns the files written. Refuses to write
    over an instructor's notebook (BadValue), and writes nothing then."""
    from .editions import student
    if not paths:
        paths = course.notebooks()
    targets = [os.path.join(outdir, os.path.basename(p)) for p in paths]
    for path, target in zip(paths, targets):
        if os.path.exists(target) and any(os.path.samefile(target, p) for p in paths):
            raise BadValue(f"{target} is an instructor's notebook: write the student edition "
                           "into another directory")
    editions = []
    for path in paths:
        with open(path) as f:
            editions.append(dumps(clean(student(json.load(f), path))))
    os.makedirs(outdir, exist_ok=True)
    for target, text in zip(targets, editions):
        with open(target, "w") as f:
            f.write(text)
    return targets


def write_editions(outdir: str, paths: list[str] | None = None) -> list[str]:
    """Write both editions of each notebook in `paths` (default: the course's):
    `outdir`/student/NAME.ipynb (see write_student) and `outdir`/instructor/NAME.ipynb (the
    notebook stored clean, solutions and outputs kept); returns the files written."""
    from .editions import instructor as instructor_edition
    paths = paths or course.notebooks()
    written = write_student(os.path.join(outdir, "student"), paths)
    instructor = os.path.join(outdir, "instructor")
    os.makedirs(instructor, exist_ok=True)
    for path in paths:
        with open(path) as f:
            text = dumps(clean(instructor_edition(json.load(f))))
        target = os.path.join(instructor, os.path.basename(path))
        if not (os.path.exists(target) and os.path.samefile(target, path)):
            with open(target, "w") as f:
                f.write(text)
        written.append(target)
    return written


def rerun(path: str, timeout: float = 300) -> None:
    """Run notebook `path` top to bottom on a kernel of this Python (labkit's), then store it
    clean in place: how an instructor records its outputs again after a change. It runs the
    notebook's labs for real, on the default lab (root; one notebook at a time)."""
    import nbformat
    from nbclient import NotebookClient
    from .handout import _kernel_manager
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, km=_kernel_manager(), timeout=timeout,
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    with open(path, "w") as f:
        f.write(dumps(clean(json.loads(nbformat.writes(nb)))))


def main(argv: list[str]) -> int:
    """`clean FILE...` rewrites notebooks clean; `check FILE...` exits 1 if any is not;
    `student OUTDIR [FILE...]` writes the student editions; `run FILE...` runs notebooks
    and stores their new outputs."""
    if argv[:1] == ["run"] and len(argv) >= 2:
        for path in argv[1:]:
            rerun(path)
            print(f"ran {path}")
        return 0
    if argv[:1] == ["student"] and len(argv) >= 2:
        try:
            written = write_student(argv[1], argv[2:])
        except (LabkitError, OSError, ValueError) as e:
            print(f"labkit: {e}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
        return 0
    if len(argv) < 2 or argv[0] not in ("clean", "check"):
        print("usage: python -m labkit.teach.notebook clean|check|run NOTEBOOK...\n"
              "       python -m labkit.teach.notebook student OUTDIR [NOTEBOOK...]", file=sys.stderr)
        return 2
    dirty = []
    for path in argv[1:]:
        if argv[0] == "clean":
            with open(path) as f:
                nb = json.load(f)
            with open(path, "w") as f:
                f.write(dumps(clean(nb)))
        elif not is_clean(path):
            dirty.append(path)
    for path in dirty:
        print(f"{path}: carries execution noise; run python -m labkit.teach.notebook clean {path}")
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
