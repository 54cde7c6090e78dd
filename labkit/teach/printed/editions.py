"""The student edition of an instructor's notebook: solutions replaced by stubs, instructor-only
cells dropped, outputs that would give an answer away cleared.

Markers, as nbgrader writes them (its ClearSolutions preprocessor; labkit does the same
without depending on nbgrader):
- a region of a cell between a line containing `BEGIN SOLUTION` and one containing
  `END SOLUTION`, both lines included, is replaced by a stub indented as the BEGIN line.
  Write them as comments: `### BEGIN SOLUTION` in Python and in a `%%lab` cell (where `#`
  lines are comments too), `<!-- BEGIN SOLUTION -->` in markdown (hidden when rendered).
- a cell whose metadata says `{"nbgrader": {"solution": true}}` and has no such region is
  replaced whole (a cell magic's first line, such as `%%lab host`, is kept).
- a cell tagged `instructor` (metadata `"tags": ["instructor"]`) is left out; so is one tagged
  `instructor-edition`, which the instructor's edition shows as a cell like any other, not as a
  note for the instructor (07's named labs).
- a cell tagged `student` is the student's alone: the instructor's edition (`instructor`) leaves
  it out, and the notebook itself tags it `nbval-skip` too, so that its stored run (the
  instructor's) neither runs nor stores it (07's mystery labs: each student draws a fault).
Stubs leave the notebook runnable top to bottom without a traceback:
- Python: one line per name the solution assigns, `answer = ...  # your answer here`
  (`exercises.check` takes `...` as "not answered yet"); `pass  # your code here` where
  it assigns nothing (nbgrader's `raise NotImplementedError()` would stop "Run All");
- a cell magic's body (`%%lab ROLE`): `# your commands here`;
- markdown: `*Your answer here.*` followed by an empty line to write in.
Predictions, tied to what answers them by cell tags (kept when a notebook is stored clean):
- `prediction:ID` on the markdown cell that asks the student to predict (ID: a-z, 0-9, -);
  it holds its answer box, a solution region (or the next cell is a code solution);
- `reveal:ID` on the cell, or cells, where the student runs what answers it (after it);
- prose elsewhere that answers it sits in `<!-- BEGIN SOLUTION answers:ID -->` ...
  `<!-- END SOLUTION -->`: the student's edition loses it with no stub (the box is at the
  prediction); the instructor's keeps it.
A step's commands, said in its prose for the guided task, sit in `<!-- BEGIN SOLUTION guided -->`
... `<!-- END SOLUTION -->`: the student's edition, which starts in challenge mode, loses them
with no stub (the step's goal stays; `lab.practice(STAGE, challenge=False)` prints them).
Outputs are cleared, and the cell tagged `nbval-ignore-output` (its output is the student's),
in every code cell from a prediction to its last reveal, where a solution was, where the cell
calls `reveal(`, where it runs a check or a hint (`.check(`, `.hint(`, `labkit check`: before the
student has typed anything they list what is missing), and where an output holds an exercise's
verdict `Right: ...`. Nothing is changed in the instructor's notebook.

`python -m labkit.teach.notebook student OUTDIR [NOTEBOOK...]` writes the student editions
(default: every notebook in notebooks/), stored clean as the instructor's are.
"""
from __future__ import annotations

import ast
import copy
import re
import textwrap

from ...errors import BadValue

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
INSTRUCTOR_TAG = "instructor"
INSTRUCTOR_EDITION_TAG = "instructor-edition"
STUDENT_TAG = "student"
SKIP_TAG = "nbval-skip"
IGNORE_OUTPUT_TAG = "nbval-ignore-output"
CODE_STUB = "{name} = ...  # your answer here"
CODE_STUB_NO_NAME = "pass  # your code here"
COMMANDS_STUB = "# your commands here"
TEXT_STUB = ("*Your answer here.*", "")
_VERDICT = re.compile(r"^Right: ", re.MULTILINE)
_REVEAL = re.compile(r"\breveal\(")
_CHECK = re.compile(r"\.(?:check|hint)\(|\blabkit (?:check|hint)\b")
PREDICTION, REVEAL, ANSWERS = "prediction:", "reveal:", "answers:"
_ANSWERS = re.compile(r"\banswers:([a-z0-9-]+)")
_GUIDED = re.compile(r"\bSOLUTION guided\b")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def assigned_names(code: str) -> list[str]:
    """Names that `code` assigns at its top level, in order (`a = 1`, `a: str = ""`, `a, b = ...`)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return list(dict.fromkeys(re.findall(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", code, re.M)))
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def stub(kind: str, solution: str, magic: bool) -> list[str]:
    """The lines that stand for `solution` in a cell of type `kind` (unindented)."""
    if kind == "markdown":
        return list(TEXT_STUB)
    if magic:
        return [COMMANDS_STUB]
    names = assigned_names(solution)
    return [CODE_STUB.format(name=n) for n in names] or [CODE_STUB_NO_NAME]


def clear_solutions(cell: dict, where: str = "") -> bool:
    """Replace the cell's solution (regions, or the whole cell if its metadata marks it a
    solution) by a stub, in place; returns True if there was one. BadValue for a region that
    is not closed, nested, or an END without a BEGIN (`where` names the cell)."""
    lines = _source(cell).split("\n")
    kind = cell.get("cell_type")
    magic = kind == "code" and lines[0].startswith("%%")
    out, region, found = [], None, False
    for line in lines:
        if BEGIN in line:
            if region is not None:
                raise BadValue(f"{where}: {BEGIN} inside another; close the first with {END}")
            region, indent, found = [], re.match(r"\s*", line).group(0), True
            answers = bool(_ANSWERS.search(line) or _GUIDED.search(line))
        elif END in line:
            if region is None:
                raise BadValue(f"{where}: {END} without a {BEGIN} before it")
            if not answers:       # prose that answers a prediction, or a step's commands, goes without a stub
                out += [indent + s if s else s for s in stub(kind, "\n".join(region), magic)]
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise BadValue(f"{where}: {BEGIN} without an {END} after it")
    if not found and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        head = lines[:1] if magic else []
        out = head + stub(kind, "\n".join(lines[len(head):]), magic)
        found = True
    if found:
        cell["source"] = "\n".join(out)
    return found


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def marked(cell: dict, prefix: str) -> list[str]:
    """The ids of the cell's tags that start with `prefix` (PREDICTION or REVEAL)."""
    return [t[len(prefix):] for t in tags(cell) if t.startswith(prefix)]


def answered(cell: dict) -> list[str]:
    """The ids of the predictions that prose in this cell answers (`answers:ID` regions)."""
    return [m.group(1) for line in _source(cell).split("\n") if BEGIN in line
            for m in [_ANSWERS.search(line)] if m]


def spans(cells: list[dict]) -> dict[str, tuple[int, int]]:
    """Each prediction's id -> (index of its cell, index of its last reveal). BadValue for a
    prediction without a reveal after it, a reveal without its prediction, or an id used twice."""
    where: dict[str, tuple[int, int]] = {}
    for i, cell in enumerate(cells):
        for name in marked(cell, PREDICTION):
            if name in where:
                raise BadValue(f"cell {i + 1}: a second prediction:{name}; give each its own id")
            where[name] = (i, -1)
        for name in marked(cell, REVEAL):
            if name not in where:
                raise BadValue(f"cell {i + 1}: reveal:{name} without a prediction:{name} before it")
            where[name] = (where[name][0], i)
    for name, (start, end) in where.items():
        if end < 0:
            raise BadValue(f"cell {start + 1}: prediction:{name} has no reveal:{name} after it")
    return where


def _reveals(cell: dict) -> bool:
    """True if the cell's outputs, or the cell itself, give an answer or a check's result away."""
    source = _source(cell)
    if _REVEAL.search(source) or _CHECK.search(source):
        return True
    for output in cell.get("outputs", []):
        texts = [output.get("text", "")] + [output.get("data", {}).get("text/plain", "")]
        if any(_VERDICT.search("".join(t) if isinstance(t, list) else t) for t in texts):
            return True
    return False


def dropped(cell: dict) -> bool:
    """True if the student's edition leaves the cell out: tagged `instructor`, or markdown that
    is nothing but prose answering a prediction."""
    if INSTRUCTOR_TAG in tags(cell) or INSTRUCTOR_EDITION_TAG in tags(cell):
        return True
    if cell.get("cell_type") != "markdown" or not answered(cell):
        return False
    probe = copy.deepcopy(cell)
    clear_solutions(probe)
    return not _source(probe).strip()


def instructor(nb: dict) -> dict:
    """The instructor's edition of notebook `nb` (a copy): every cell but the student's own."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb.get("cells", []) if STUDENT_TAG not in tags(c)]
    return nb


def student(nb: dict, where: str = "notebook") -> dict:
    """The student edition of notebook `nb` (a copy; `nb` is not changed). `where` names the
    notebook in errors. Store it with `notebook.clean`, as `write` does."""
    nb = copy.deepcopy(nb)
    try:
        hidden = [i for start, end in spans(nb.get("cells", [])).values() for i in range(start, end + 1)]
    except BadValue as e:
        raise BadValue(f"{where}, {e}") from None
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        if dropped(cell):
            continue
        if STUDENT_TAG in tags(cell):           # runs in the student's copy, under nbval too
            cell["metadata"]["tags"] = [t for t in tags(cell) if t != SKIP_TAG]
        solved = clear_solutions(cell, f"{where}, cell {i + 1}")
        if cell.get("cell_type") == "code" and (solved or i in hidden or _reveals(cell)):
            cell["outputs"] = []
            cell_tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if IGNORE_OUTPUT_TAG not in cell_tags:
                cell_tags.append(IGNORE_OUTPUT_TAG)
        cells.append(cell)
    nb["cells"] = cells
    return nb
