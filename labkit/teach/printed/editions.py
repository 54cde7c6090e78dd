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
- a cell tagged `instructor` (metadata `"tags": ["instructor"]`) is left out.
Stubs leave the notebook runnable top to bottom without a traceback:
- Python: one line per name the solution assigns, `answer = ...  # your answer here`
  (`exercises.check` takes `...` as "not answered yet"); `pass  # your code here` where
  it assigns nothing (nbgrader's `raise NotImplementedError()` would stop "Run All");
- a cell magic's body (`%%lab ROLE`): `# your commands here`;
- markdown: `*Your answer here.*` followed by an empty line to write in.
Outputs are cleared, and the cell tagged `nbval-ignore-output` (its output is the student's),
where a solution was, where the cell calls `reveal(`, where an output holds an exercise's
verdict `Right: ...`, and in the code cell that follows a question answered in markdown (it
shows what the student was asked to predict). Nothing is changed in the instructor's notebook.

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
IGNORE_OUTPUT_TAG = "nbval-ignore-output"
CODE_STUB = "{name} = ...  # your answer here"
CODE_STUB_NO_NAME = "pass  # your code here"
COMMANDS_STUB = "# your commands here"
TEXT_STUB = ("*Your answer here.*", "")
_VERDICT = re.compile(r"^Right: ", re.MULTILINE)
_REVEAL = re.compile(r"\breveal\(")


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
        elif END in line:
            if region is None:
                raise BadValue(f"{where}: {END} without a {BEGIN} before it")
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


def _reveals(cell: dict) -> bool:
    """True if the cell's outputs, or the cell itself, give an exercise's answer away."""
    if _REVEAL.search(_source(cell)):
        return True
    for output in cell.get("outputs", []):
        texts = [output.get("text", "")] + [output.get("data", {}).get("text/plain", "")]
        if any(_VERDICT.search("".join(t) if isinstance(t, list) else t) for t in texts):
            return True
    return False


def student(nb: dict, where: str = "notebook") -> dict:
    """The student edition of notebook `nb` (a copy; `nb` is not changed). `where` names the
    notebook in errors. Store it with `notebook.clean`, as `write` does."""
    nb = copy.deepcopy(nb)
    cells = []
    predicted = False       # after a question answered in markdown: the cell that shows the answer
    for i, cell in enumerate(nb.get("cells", [])):
        if INSTRUCTOR_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        solved = clear_solutions(cell, f"{where}, cell {i + 1}")
        if cell.get("cell_type") == "markdown":
            predicted = bool(solved)
        elif cell.get("cell_type") == "code" and (solved or predicted or _reveals(cell)):
            predicted = False
            cell["outputs"] = []
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if IGNORE_OUTPUT_TAG not in tags:
                tags.append(IGNORE_OUTPUT_TAG)
        cells.append(cell)
    nb["cells"] = cells
    return nb
