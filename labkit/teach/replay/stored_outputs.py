"""The outputs a notebook's cells had on a real kernel, found from a cell's source text.

A stored course notebook holds, for each cell, the outputs a privileged kernel gave it (nbval
keeps them true in CI). Where labs cannot run, `replay` shows them in place of a cell that
needs the kernel; this module finds them. The kernel is not told which notebook it runs, so:

- the notebooks looked in, first to last: the one named by `JPY_SESSION_NAME` (what Jupyter
  Server sets for a notebook's kernel; ipykernel copies it to `__session__`), the `*.ipynb`
  files of the kernel's working directory (Jupyter starts a kernel in its notebook's
  directory), then the course's own notebooks (the pristine recorded course, found by labkit.teach.replay.course);
- a cell matches a stored cell of the same source text, normalized (`normalize`: trailing
  blanks and blank first/last lines do not count). When JupyterLab sends the cell's id, the
  stored cell with that id and that text wins. A text that occurs more than once in one
  notebook (the same capture before and after a step) matches its next occurrence after the
  cell matched last (so "Run All" takes each in turn), else its first;
- among notebooks holding the text, the one matched last is preferred (the student stays in
  one notebook), then the order above;
- outputs a run here added (this module's banner, errors, the old skip line) are not
  recordings: a copy whose matched cell holds none but those gives way to the next notebook of
  the same file name (the pristine one in notebooks/), so a notebook that was saved after a
  run without privileges still replays what the real kernel printed.

Recordings are dated by the last git commit of their file (its modification date outside git).
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import re
import subprocess
from dataclasses import dataclass, field

from . import course

BANNER = "recorded on a real kernel on {date}; run it yourself in a VM"
MARK = "labkit/replayed"            # metadata key of the banner output (not a recording)
NOT_RECORDED = ("(this cell needs a privileged VM, and no run of it was recorded: "
                "see the first cell)")
NOT_JUDGED = ("(this exercise compares your answer with the live lab, which cannot run here: "
              "run the notebook in a VM to check your answer)")
_NOT_RECORDED = ("(skipped: this cell needs a privileged VM", "labkit: labkit needs root",
                 "labkit needs a privileged Linux VM", NOT_RECORDED[:40], NOT_JUDGED[:40])
_VERDICT = re.compile(r"^(Right: |Not quite \()", re.M)     # labkit.teach.notebook.exercises' verdicts


def normalize(source) -> str:
    """A cell's source as compared: lines without trailing blanks, no blank first/last line."""
    text = "".join(source) if isinstance(source, list) else (source or "")
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def is_recording(output: dict) -> bool:
    """False for an output that a run without privileges added (banner, error, skip line)."""
    if output.get("output_type") == "error" or MARK in output.get("metadata", {}):
        return False
    if output.get("output_type") == "stream":
        return not any(t in _text(output.get("text", "")) for t in _NOT_RECORDED)
    plain = _text(output.get("data", {}).get("text/plain", ""))
    return not (output.get("output_type") == "display_data" and plain.startswith(BANNER[:28]))


@dataclass
class Cell:
    """A stored code cell: its place in the notebook, id, normalized source and outputs."""
    index: int
    id: str
    source: str
    outputs: list

    @property
    def recorded(self) -> list:
        """The outputs that a real kernel gave (see `is_recording`)."""
        return [o for o in self.outputs if is_recording(o)]

    @property
    def judged(self) -> bool:
        """True if an output is an exercise's verdict on the answer given when it was recorded."""
        return any(_VERDICT.search(_text(o.get("text", "")) + _text(o.get("data", {}).get("text/plain", "")))
                   for o in self.recorded)

    @property
    def replaced(self) -> bool:
        """True if a run here replaced what was recorded (outputs, none of them recordings)."""
        return bool(self.outputs) and not self.recorded


@dataclass
class Notebook:
    """A stored notebook's code cells, by source."""
    path: str
    cells: list[Cell]
    by_source: dict[str, list[Cell]] = field(default_factory=dict)

    def __post_init__(self):
        for cell in self.cells:
            self.by_source.setdefault(cell.source, []).append(cell)

    @property
    def date(self) -> str:
        """When its outputs were recorded: the date of the file's last commit (or its mtime)."""
        return recorded_on(self.path)


def recorded_on(path: str) -> str:
    """YYYY-MM-DD of the last commit that changed `path` if it is committed unchanged; else,
    if labkit's notebooks/ holds a committed notebook of the same name (the one a copy was made
    from), that one's; else the file's last modification."""
    path = os.path.abspath(path)
    if path not in _dates:
        namesake = os.path.join(course.directory(), os.path.basename(path))
        _dates[path] = _git_date(path) or (_git_date(namesake) if os.path.isfile(namesake) else None) \
            or datetime.date.fromtimestamp(os.stat(path).st_mtime).isoformat()
    return _dates[path]


_loaded: dict[str, tuple[float, Notebook | None]] = {}
_dates: dict[str, str] = {}


def load(path: str) -> Notebook | None:
    """The notebook at `path` (None if it cannot be read as one); cached until it changes."""
    path = os.path.abspath(path)
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    got = _loaded.get(path)
    if got and got[0] == mtime:
        return got[1]
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells = [Cell(i, c.get("id", ""), normalize(c.get("source", "")), c.get("outputs", []))
                 for i, c in enumerate(nb.get("cells", [])) if c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError, TypeError):
        found = None
    else:
        found = Notebook(path, cells)
    _loaded[path] = (mtime, found)
    return found


def _git_date(path: str) -> str | None:
    where = os.path.dirname(path)
    try:
        changed = subprocess.run(["git", "status", "--porcelain", "--", path], cwd=where,
                                 capture_output=True, text=True, timeout=10)
        if changed.returncode or changed.stdout.strip():
            return None
        said = subprocess.run(["git", "log", "-1", "--format=%cs", "--", path], cwd=where,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    date = said.stdout.strip()
    return date if said.returncode == 0 and len(date) == 10 else None


def candidates(cwd: str | None = None) -> list[str]:
    """The notebooks looked in, first to last (see the module docstring)."""
    cwd = os.path.abspath(cwd or os.getcwd())
    found = []
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb"):
        for path in (session, os.path.join(cwd, session), os.path.join(cwd, os.path.basename(session))):
            if os.path.isfile(path):
                found.append(path)
                break
    found += sorted(glob.glob(os.path.join(cwd, "*.ipynb")))
    found += sorted(glob.glob(os.path.join(course.directory(), "*.ipynb")))
    seen, out = set(), []
    for path in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append(real)
    return out


@dataclass
class Match:
    """A stored cell found for a cell being run, and the notebook it is in."""
    notebook: Notebook
    cell: Cell

    @property
    def outputs(self) -> list:
        return self.cell.recorded

    @property
    def banner(self) -> str:
        return BANNER.format(date=self.notebook.date)


class Finder:
    """Finds the stored cell for each cell run in one kernel (it remembers where it is)."""

    def __init__(self, cwd: str | None = None):
        self.cwd = cwd
        self.last: tuple[str, int] | None = None     # notebook path, cell index matched last

    def find(self, source: str, cell_id: str | None = None) -> Match | None:
        """The stored cell for a cell of `source` (and JupyterLab's `cell_id`), or None."""
        text = normalize(source)
        if not text:
            return None
        books = [nb for nb in map(load, candidates(self.cwd)) if nb is not None]
        holding = [nb for nb in books if text in nb.by_source]
        if not holding:
            return None
        if self.last is not None:
            holding.sort(key=lambda nb: nb.path != self.last[0])     # stable: the rest keep order
        best = next((Match(nb, c) for nb in holding for c in nb.by_source[text]
                     if cell_id and c.id == cell_id), None) \
            or Match(holding[0], self._pick(holding[0], text))
        best = self._recorded(best, books, text)
        self.last = (best.notebook.path, best.cell.index)
        return best

    def _pick(self, nb: Notebook, text: str) -> Cell:
        same = nb.by_source[text]
        if self.last is not None and self.last[0] == nb.path:
            later = [c for c in same if c.index > self.last[1]]
            if later:
                return later[0]
        return same[0]

    def _recorded(self, match: Match, books: list[Notebook], text: str) -> Match:
        """`match`, or where a run here replaced its outputs, the same cell (by id, else by
        its turn among cells of that text) in the next notebook of the same file name."""
        if not match.cell.replaced:
            return match
        turn = match.notebook.by_source[text].index(match.cell)
        name = os.path.basename(match.notebook.path)
        for nb in books:
            if nb is match.notebook or os.path.basename(nb.path) != name or text not in nb.by_source:
                continue
            same = nb.by_source[text]
            cell = next((c for c in same if match.cell.id and c.id == match.cell.id), None) \
                or same[min(turn, len(same) - 1)]
            if not cell.replaced:
                return Match(nb, cell)
        return match
