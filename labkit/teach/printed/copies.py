"""The two printed copies of a notebook, made from one run of the instructor's notebook.

    student(nb)      the student edition (editions.student): no solutions, answers or verdicts;
                     a ruled box to write in where each solution was, as long as the solution
    instructor(nb)   solutions marked, markdown answers boxed, cells tagged `instructor` shown
                     as notes, and a note at the top: how long the notebook ran (a real run),
                     the exercises' usual wrong answers, and the usual mistakes of its stage

Both leave out what is noise on paper: the setup cell (`labkit.teach.notebook.setup()`, its
"labkit is ready" and True) and widgets' live views (their text stays); a terminal's lines
are one block. Neither changes `nb`.
"""
from __future__ import annotations

import copy
import datetime
import html
import re

from . import editions

SETUP_CALL = re.compile(r"\blabkit\.teach\.notebook\.setup\(|^\s*(?:notebook\.)?setup\(", re.M)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SOLUTION_TAG = "lk-solution"
HIDDEN_TAG = "lk-hidden"
ROOM = '\n\n<div class="lk-room" style="--lines: {n}"></div>\n\n'
_EXERCISE = re.compile(r"\bcheck\(\s*[\"']([a-z0-9-]+)[\"']")
_STAGE = re.compile(r"\b(?:practice|seed|check|up)\(\s*[\"']([a-z0-9-]+)[\"']")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def quiet(nb: dict) -> dict:
    """A copy of `nb` without the setup cell's output and without widgets' live views."""
    nb = copy.deepcopy(nb)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if SETUP_CALL.search(_source(cell)):
            cell["outputs"] = []
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if HIDDEN_TAG not in tags:
                tags.append(HIDDEN_TAG)          # not printed at all: machinery, not the lesson
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and WIDGET_VIEW in data:
                data = {k: v for k, v in data.items() if k != WIDGET_VIEW}
                if not data:
                    continue
                out = {**out, "data": data}
            last = kept[-1] if kept else {}
            if out.get("output_type") == "stream" and last.get("output_type") == "stream" \
                    and last.get("name") == out.get("name"):     # one block, as a terminal shows it
                kept[-1] = {**last, "text": _text(last) + _text(out)}
                continue
            kept.append(out)
        cell["outputs"] = kept
    return nb


def _text(output) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else text


def solution_lines(cell) -> int:
    """How many lines of the cell are solution (between the markers, or the whole cell); prose
    that answers a prediction (`answers:ID`) is not counted: the student writes at the prediction."""
    lines, inside, n = _source(cell).split("\n"), False, 0
    for line in lines:
        if editions.BEGIN in line:
            inside = editions.ANSWERS not in line
        elif editions.END in line:
            inside = False
        elif inside:
            n += 1
    if n == 0 and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        n = len(lines) - (1 if lines[0].startswith("%%") else 0)
    return n


def student(nb: dict, where: str = "notebook") -> dict:
    """The student's printed copy of instructor's notebook `nb` (run or stored)."""
    out = quiet(editions.student(nb, where))
    kept = [c for c in nb.get("cells", []) if not editions.dropped(c)]
    for mine, theirs in zip(kept, out["cells"]):
        n = solution_lines(mine)
        if not n:
            continue
        if theirs["cell_type"] == "markdown":
            lines = max(3, min(10, n + 1))
            theirs["source"] = _source(theirs).replace(editions.TEXT_STUB[0],
                                                       editions.TEXT_STUB[0] + ROOM.format(n=lines), 1)
        elif theirs["cell_type"] == "code":
            lines = max(2, min(12, n + 1))
            theirs["outputs"] = [{"output_type": "display_data", "metadata": {},
                                  "data": {"text/html": ROOM.format(n=lines).strip(),
                                           "text/plain": ""}}]
    return out


def _boxed_answers(text: str) -> str:
    """Markdown with each `<!-- BEGIN SOLUTION -->` region (`answers:ID` ones too) in a box
    headed "Answer"."""
    text = re.sub(r"^.*<!--\s*BEGIN SOLUTION\b[^>]*-->.*$", '\n<div class="lk-answer">\n', text, flags=re.M)
    return re.sub(r"^.*<!--\s*END SOLUTION\s*-->.*$", "\n</div>\n", text, flags=re.M)


def stages_of(nb: dict) -> list[str]:
    """The stages a notebook works on (named in its practice/seed/check/up calls), in order."""
    from ...model.stages import STAGES
    found = [m for c in nb.get("cells", []) if c.get("cell_type") == "code"
             for m in _STAGE.findall(_source(c)) if m in STAGES]
    return list(dict.fromkeys(found))


def exercises_of(nb: dict) -> list[str]:
    """The exercises a notebook checks, in order."""
    from ..notebook.exercises import EXERCISES
    found = [m for c in nb.get("cells", []) if c.get("cell_type") == "code"
             for m in _EXERCISE.findall(_source(c)) if m in EXERCISES]
    return list(dict.fromkeys(found))


def _seconds(cell) -> float | None:
    ex = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return None
    return (end - start).total_seconds()


def _timing(nb: dict, seconds: float | None) -> str:
    if seconds is None:
        return ("**Time.** Not measured: this copy was printed from the stored outputs. "
                "`sudo labkit handout` runs the notebooks and says how long each takes.")
    timed = sorted(((_seconds(c), i + 1, _source(c).split("\n")[0]) for i, c in enumerate(nb["cells"])
                    if c.get("cell_type") == "code" and _seconds(c) is not None), reverse=True)
    slow = "; ".join(f"cell {i}, {s:.0f} s: `{first[:48]}`" for s, i, first in timed[:3] if s >= 1)
    return (f"**Time.** The notebook ran in {seconds:.0f} s on this machine, top to bottom"
            + (f" (the slowest cells: {slow})" if slow else "") + ". Students who type the "
            "commands themselves take longer: count a few minutes per task.")


def notes(nb: dict, seconds: float | None = None) -> str:
    """The instructor's note for the top of notebook `nb` (markdown)."""
    from ..notebook.exercises import EXERCISES
    from ...lab.faults import FAULTS
    parts = [_timing(nb, seconds)]
    names = exercises_of(nb)
    if names:
        parts.append("**Exercises, and the wrong answers students usually give:**")
        for name in names:
            ex = EXERCISES[name]
            wrong = "; ".join(f"*{html.escape(k)}*: {v}" for k, v in ex.hints.items())
            parts.append(f"- `{name}`: the answer is read from the lab ({ex.why})"
                         + (f" Usual wrong answers: {wrong}" if wrong else ""))
    for stage in stages_of(nb):
        faults = [f for f in FAULTS.values() if f.stage == stage]
        if faults:
            parts.append(f"**What usually goes wrong in stage {stage}** (each can be set up for "
                         f"practice: `sudo labkit up {stage} --fault NAME`; `labkit check {stage}` "
                         "names it):")
            parts += [f"- `{f.name}` ({f.layer}): {f.symptom}" for f in faults]
    return '<div class="lk-notes">\n\n' + "\n\n".join(parts) + "\n\n</div>"


def instructor(nb: dict, seconds: float | None = None) -> dict:
    """The instructor's printed copy of notebook `nb`; `seconds`: how long its run took."""
    nb = quiet(editions.instructor(nb))
    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown" and editions.BEGIN in _source(cell):
            cell["source"] = _boxed_answers(_source(cell))
        elif cell.get("cell_type") == "code" and solution_lines(cell):
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if SOLUTION_TAG not in tags:
                tags.append(SOLUTION_TAG)
    at = 1 if nb["cells"] and nb["cells"][0].get("cell_type") == "markdown" else 0
    nb["cells"].insert(at, {"cell_type": "markdown", "metadata": {}, "id": "labkit-notes",
                            "source": notes(nb, seconds)})
    return nb
