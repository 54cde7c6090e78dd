"""Student editions: solutions (nbgrader's markers) replaced by stubs that run, instructor cells
dropped, revealing outputs cleared, the instructor's notebook untouched; over the course, every
prediction marked, boxed, and shown nothing of before its reveal. No root needed."""
import ast
import glob
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.errors import BadValue
from labkit.teach.printed import editions, stored
from labkit.teach.replay import course

SECRETS = ("veth0", "172.18.0.11", "netns0 because", "ip addr add", "the instructor's note",
           "MARKED WHOLE")


def instructor_notebook():
    """A small instructor's edition: every kind of marker, and cells that must stay as they are."""
    return new_notebook(cells=[
        new_markdown_cell("# Routes\nWhich interface leads to netns0?"),
        new_code_cell("from labkit.teach.notebook import exercises"),
        new_code_cell("### BEGIN SOLUTION\nroute_answer = \"veth0\"\n### END SOLUTION",
                      metadata={"nbgrader": {"solution": True}}),
        new_code_cell("exercises.check(\"veth-route\", route_answer)", outputs=[
            new_output("execute_result", {"text/plain": "Right: veth0. Why: the route."},
                       execution_count=4)]),
        new_markdown_cell("Why?\n\n<!-- BEGIN SOLUTION -->\nBecause of netns0 because the route"
                          "\nsays so.\n<!-- END SOLUTION -->\n\nNext part."),
        new_code_cell("%%lab host\n### BEGIN SOLUTION\nsudo ip addr add 172.18.0.11/16 dev veth0\n"
                      "### END SOLUTION\nip -br addr", outputs=[
                          new_output("stream", name="stdout", text="root@host:~# sudo ip addr add "
                                                                   "172.18.0.11/16 dev veth0\n")]),
        new_markdown_cell("the instructor's note: MARKED WHOLE", metadata={"tags": ["instructor"]}),
        new_code_cell("print('MARKED WHOLE')", metadata={"nbgrader": {"solution": True}}),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 'veth0'\n    ### END SOLUTION"),
        new_code_cell("print(1 + 1)", outputs=[new_output("stream", name="stdout", text="2\n")]),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def sources(nb):
    return [c["source"] for c in nb["cells"]]


def test_solutions_become_stubs_and_nothing_of_them_is_left():
    nb = instructor_notebook()
    before = json.dumps(nb, sort_keys=True)
    out = editions.student(nb, "x.ipynb")
    assert json.dumps(nb, sort_keys=True) == before               # the instructor's is unchanged
    text = json.dumps(out)
    for secret in SECRETS + ("BEGIN SOLUTION", "END SOLUTION"):
        assert secret not in text, secret
    src = sources(out)
    assert len(src) == len(nb["cells"]) - 1                        # the instructor cell is gone
    assert src[2] == "route_answer = ...  # your answer here"
    assert src[4] == "Why?\n\n*Your answer here.*\n\n\nNext part."
    assert src[5] == "%%lab host\n# your commands here\nip -br addr"
    assert src[6] == "pass  # your code here"
    assert src[7] == "def f():\n    pass  # your code here"
    for s in (src[2], src[6], src[7]):
        ast.parse(s)                                               # stubs are valid Python
    assert src[9 - 1] == "print(1 + 1)" and out["cells"][8]["outputs"][0]["text"] == "2\n"


def test_outputs_that_give_an_answer_away_are_cleared_and_not_compared():
    out = editions.student(instructor_notebook())
    verdict, lab_cell, plain = out["cells"][3], out["cells"][5], out["cells"][8]
    for cell in (verdict, lab_cell):
        assert cell["outputs"] == [] and "nbval-ignore-output" in cell["metadata"]["tags"]
    assert plain["outputs"] and "tags" not in plain["metadata"]
    revealing = new_notebook(cells=[new_code_cell("exercises.reveal('veth-route')", outputs=[
        new_output("stream", name="stdout", text="The answer ... veth0\n")])])
    assert editions.student(revealing)["cells"][0]["outputs"] == []


def test_a_whole_solution_cell_keeps_its_cell_magic_line():
    cell = new_code_cell("%%lab netns0\nip link set lo up", metadata={"nbgrader": {"solution": True}})
    assert editions.clear_solutions(cell)
    assert cell["source"] == "%%lab netns0\n# your commands here"


def test_names_assigned_by_a_solution_each_get_a_stub():
    assert editions.assigned_names("a = 1\nb: str = 'x'\nc, (d, e) = 1, (2, 3)\nf += 1") == \
        ["a", "b", "c", "d", "e"]
    assert editions.assigned_names("x = 1\ny = !ls") == ["x", "y"]    # not Python: by pattern
    cell = new_code_cell("### BEGIN SOLUTION\ngw, dev = '10.0.2.2', 'ens18'\n### END SOLUTION")
    editions.clear_solutions(cell)
    assert cell["source"] == "gw = ...  # your answer here\ndev = ...  # your answer here"


@pytest.mark.parametrize("source, complaint", [
    ("### BEGIN SOLUTION\nx = 1", "without an END SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ("x = 1\n### END SOLUTION", "without a BEGIN SOLUTION"),
])
def test_badly_marked_solutions_are_refused_naming_the_cell(source, complaint):
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell(source)])
    with pytest.raises(BadValue, match=f"lesson.ipynb, cell 2: .*{complaint}"):
        editions.student(nb, "lesson.ipynb")


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "labkit.teach.notebook", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_the_command_writes_clean_student_editions_and_leaves_the_instructors(tmp_path):
    source = tmp_path / "teach" / "01-x.ipynb"
    source.parent.mkdir()
    source.write_text(stored.dumps(stored.clean(instructor_notebook())))
    before = source.read_bytes()
    result = run_cli("student", str(tmp_path / "out"), str(source))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "out" / "01-x.ipynb"
    assert result.stdout.strip() == f"wrote {written}"
    assert source.read_bytes() == before
    assert stored.is_clean(str(written))
    assert "route_answer = ...  # your answer here" in written.read_text()
    assert "veth0" not in written.read_text()


def test_the_command_refuses_to_write_over_the_instructors_notebooks(tmp_path):
    source = tmp_path / "01-x.ipynb"
    source.write_text(stored.dumps(stored.clean(instructor_notebook())))
    before = source.read_bytes()
    result = run_cli("student", str(tmp_path), str(source))
    assert result.returncode == 1 and "is an instructor's notebook" in result.stderr
    assert "Traceback" not in result.stderr and source.read_bytes() == before


def test_without_notebooks_named_the_command_takes_the_course_in_notebooks(tmp_path):
    """./notebooks holds the course (a notebook starts with the setup cell): its numbered
    notebooks are taken (labkit.teach.replay.course)."""
    (tmp_path / "notebooks").mkdir()
    nb = instructor_notebook()
    nb.cells.insert(0, new_code_cell("import labkit.teach.notebook; labkit.teach.notebook.setup()"))
    for name in ("01-a.ipynb", "02-b.ipynb"):
        (tmp_path / "notebooks" / name).write_text(json.dumps(nb))
    result = run_cli("student", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["01-a.ipynb", "02-b.ipynb"]


def test_the_student_edition_runs_top_to_bottom_without_an_error(tmp_path):
    """Executed by a real kernel: the stubs leave the answer unset, check says so, no traceback."""
    from nbconvert.preprocessors import ExecutePreprocessor
    nb = instructor_notebook()
    nb["cells"][5]["source"] = nb["cells"][5]["source"].replace("\nip -br addr", "")
    nb["cells"].insert(1, new_code_cell("%load_ext labkit.teach.notebook.magic"))
    out = nbformat.from_dict(editions.student(nb))
    ExecutePreprocessor(timeout=120, kernel_name="python3").preprocess(
        out, {"metadata": {"path": str(tmp_path)}})           # raises on any error
    verdict = out["cells"][4]["outputs"][0]["data"]["text/plain"]
    assert verdict.startswith("Not answered yet: write your answer in the cell above"), verdict
    assert out["cells"][6]["source"] == "%%lab host\n# your commands here"
    assert out["cells"][6]["outputs"] == []                 # nothing typed yet: nothing run


@pytest.mark.parametrize("stub", [..., None])
def test_checking_the_stub_says_not_answered_yet_without_touching_the_lab(stub):
    from labkit.teach.notebook import exercises
    verdict = exercises.check("veth-route", stub, lab=object())   # a lab it would fail to use
    assert not verdict and str(verdict) == exercises.NOT_DONE
    assert "veth0" not in str(verdict)


@pytest.mark.kernel
def test_reveal_prints_the_answer_read_from_the_live_lab(lab, capsys):
    from labkit.teach.notebook import exercises
    lab.up("veth")
    assert exercises.reveal("veth-route", lab) is None
    out = capsys.readouterr().out
    assert out == ("The answer to 'veth-route', read from the lab now: veth0. Why: "
                   f"{exercises.EXERCISES['veth-route'].why}\n")
    lab.exec("host", ["ip", "route", "add", "172.18.0.10/32", "dev", "ens18"], check=True)
    exercises.reveal("veth-route", lab)                 # read afresh, not stored
    assert "read from the lab now: ens18." in capsys.readouterr().out
    with pytest.raises(LookupError, match="no exercise 'nope'"):
        exercises.reveal("nope", lab)


def predicted_notebook():
    """A prediction, the cells up to its reveal, prose answering it, a check, and a cell after."""
    shown = new_output("stream", name="stdout", text="64 bytes from 172.18.0.20\n")
    return new_notebook(cells=[
        new_markdown_cell("Will netns0 answer?\n<!-- BEGIN SOLUTION -->\nYes.\n<!-- END SOLUTION -->",
                          metadata={"tags": ["prediction:answer"]}),
        new_code_cell("lab.up('bridge')", outputs=[shown]),
        new_markdown_cell("Now the ping:\n<!-- BEGIN SOLUTION answers:answer -->\nIt ANSWERS-7K."
                          "\n<!-- END SOLUTION -->"),
        new_markdown_cell("<!-- BEGIN SOLUTION answers:answer -->\nWHOLE-CELL-8Q\n<!-- END SOLUTION -->"),
        new_code_cell("lab.ping('netns0', '172.18.0.20')", outputs=[shown],
                      metadata={"tags": ["reveal:answer"]}),
        new_code_cell("lab.check('bridge')", outputs=[shown]),
        new_code_cell("lab.hint('bridge', level=2)", outputs=[shown]),
        new_code_cell("%%lab host\nlabkit check bridge", outputs=[shown]),
        new_code_cell("lab.diagram()", outputs=[shown]),
    ])


def test_from_a_prediction_to_its_reveal_nothing_is_shown_and_answering_prose_goes():
    nb = predicted_notebook()
    cells = editions.student(nb)["cells"]
    assert len(cells) == len(nb.cells) - 1                    # the cell that only answered is gone
    assert cells[0].source == "Will netns0 answer?\n*Your answer here.*\n"
    assert cells[2].source == "Now the ping:"                # no stub: the box is at the prediction
    assert "ANSWERS-7K" not in json.dumps(cells) and "WHOLE-CELL-8Q" not in json.dumps(cells)
    for cell in cells[1], cells[3]:                           # up to the reveal, and the reveal
        assert cell.outputs == [] and "nbval-ignore-output" in cell.metadata.tags
    for cell in cells[4:7]:                                   # checks and hints, however typed
        assert cell.outputs == []
    assert cells[7].outputs and "tags" not in cells[7].metadata
    assert "reveal:answer" in cells[3].metadata.tags          # the markers stay, for the tests


@pytest.mark.parametrize("cells, complaint", [
    ([new_markdown_cell("P", metadata={"tags": ["prediction:a"]})], "prediction:a has no reveal:a"),
    ([new_code_cell("x", metadata={"tags": ["reveal:a"]})], "reveal:a without a prediction:a"),
    ([new_markdown_cell("P", metadata={"tags": ["prediction:a"]}),
      new_markdown_cell("Q", metadata={"tags": ["prediction:a"]})], "a second prediction:a"),
])
def test_badly_tied_predictions_are_refused_naming_the_cell(cells, complaint):
    with pytest.raises(BadValue, match=f"lesson.ipynb, cell .*{complaint}"):
        editions.student(new_notebook(cells=cells), "lesson.ipynb")


def test_printed_student_copy_leaves_no_room_for_answering_prose():
    from labkit.teach.printed import copies
    nb = predicted_notebook()
    out = copies.student(nb)
    assert "lk-room" in out["cells"][0]["source"] and "lk-room" not in out["cells"][2]["source"]
    boxed = copies.instructor(nb)["cells"][3]["source"]      # after the instructor's note
    assert '<div class="lk-answer">' in boxed and "answers:" not in boxed


# The course: every notebook, every prediction

COURSE = sorted(glob.glob(os.path.join(course.directory(), "[0-9]*.ipynb")))
IDS = [os.path.basename(p)[:2] for p in COURSE]
PREDICT = re.compile(r"\bpredict\b|\bwrite (?:your answer|down what you expect|it down)", re.I)


def load(path):
    with open(path) as f:
        return json.load(f)


def text(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def answering_lines(cell):
    """The lines of the cell's prose that answer a prediction (in answers:ID regions)."""
    lines, inside = [], False
    for line in text(cell).split("\n"):
        if editions.BEGIN in line:
            inside = editions.ANSWERS in line
        elif editions.END in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", COURSE, ids=IDS)
def test_every_prediction_is_marked_and_has_an_answer_box(path):
    cells = load(path)["cells"]
    spans = editions.spans(cells)                   # each with a reveal after it (else BadValue)
    asking = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
              and any(PREDICT.search(line) and not re.match(r"\d+\. ", line)  # not 07's how-to list
                      for line in text(c).split("\n"))]
    assert sorted(start for start, _ in spans.values()) == asking   # no prediction left unmarked
    for name, (start, _) in spans.items():
        own = [line for line in text(cells[start]).split("\n") if editions.BEGIN in line
               and editions.ANSWERS not in line]
        after = cells[start + 1] if start + 1 < len(cells) else {}
        in_code = after.get("cell_type") == "code" and editions.BEGIN in text(after)
        assert own or in_code, f"cell {start}: prediction:{name} has no answer box"
    for i, cell in enumerate(cells):
        for name in editions.answered(cell):
            assert name in spans, f"cell {i}: answers:{name}, but no prediction:{name}"


@pytest.mark.parametrize("path", COURSE, ids=IDS)
def test_the_student_edition_shows_nothing_between_a_prediction_and_its_reveal(path):
    instructor = load(path)
    out = editions.student(instructor, path)["cells"]
    spans = editions.spans(out)
    kept = [c for c in instructor["cells"] if not editions.dropped(c)]
    assert spans.keys() == editions.spans(kept).keys()
    for name, (start, end) in spans.items():
        for i in range(start, end + 1):
            assert not out[i].get("outputs"), f"cell {i} shows an output before reveal:{name}"
    said = {line.strip() for c in out if c["cell_type"] == "markdown" for line in text(c).split("\n")}
    for cell in instructor["cells"]:
        for line in answering_lines(cell):
            assert line not in said, line
    for i, cell in enumerate(out):
        if cell["cell_type"] == "code" and re.search(r"\.(check|hint)\(|labkit (check|hint)", text(cell)):
            assert not cell["outputs"], f"cell {i} keeps a check's or a hint's output"


def test_labkit_editions_writes_both_sets(tmp_path):
    result = subprocess.run([sys.executable, "-m", "labkit", "editions", "-o", str(tmp_path / "out"),
                             "--notebooks", course.directory()], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    names = sorted(os.path.basename(p) for p in COURSE)
    for edition in ("student", "instructor"):
        assert sorted(os.listdir(tmp_path / "out" / edition)) == names
    for path in COURSE:
        name = os.path.basename(path)
        instructor = (tmp_path / "out" / "instructor" / name).read_text()
        student = (tmp_path / "out" / "student" / name).read_text()
        with open(path) as f:
            as_stored = json.load(f)
        mine = [c for c in as_stored["cells"] if editions.STUDENT_TAG not in editions.tags(c)]
        assert json.loads(instructor) == stored.clean({**as_stored, "cells": mine})  # less the student's own
        assert editions.BEGIN in instructor and editions.BEGIN not in student
        assert stored.is_clean(str(tmp_path / "out" / "student" / name))
    assert result.stdout.count("wrote ") == 2 * len(COURSE)


def test_a_students_own_cell_is_in_the_students_edition_only_and_runs_there():
    own = new_code_cell("lab.up('bridge', fault='random')", metadata={"tags": ["student", "nbval-skip"]})
    named = new_code_cell("lab.up('bridge', fault='same-mac')", metadata={"tags": ["instructor"]})
    nb = new_notebook(cells=[new_markdown_cell("# Lab"), own, named])
    student = editions.student(nb)["cells"]
    assert [c["source"] for c in student] == ["# Lab", own.source]
    assert "nbval-skip" not in student[1]["metadata"]["tags"]        # it runs in the student's copy
    assert [c["source"] for c in editions.instructor(nb)["cells"]] == ["# Lab", named.source]
    assert nb.cells[1].metadata.tags == ["student", "nbval-skip"]    # the instructor's untouched


def test_the_troubleshooting_students_edition_draws_its_faults_and_names_none():
    from labkit.lab import faults
    path = os.path.join(course.directory(), "07-troubleshooting.ipynb")
    with open(path) as f:
        instructor = json.load(f)
    student = "\n".join("".join(c["source"]) for c in editions.student(instructor, path)["cells"])
    ups = re.findall(r"lab\.up\([^)]*\)", student)
    assert len(ups) >= 5 and all('fault="random"' in up for up in ups), ups
    assert [name for name in faults.FAULTS if f'"{name}"' in student or f"`{name}`" in student] == []
    shown = "\n".join("".join(c["source"]) for c in editions.instructor(instructor)["cells"]
                      if c["cell_type"] == "code")
    assert 'fault="random"' not in shown and 'fault="no-forwarding"' in shown


PRACTISED = {"01": "veth", "02": "two-veths", "03": "bridge", "04": "outside", "05": "publish",
             "06": "hairpin"}


@pytest.mark.parametrize("number,stage", PRACTISED.items())
def test_the_students_edition_says_no_command_of_the_stage_it_sets_as_a_challenge(number, stage):
    from labkit.model import seed
    (path,) = [p for p in COURSE if os.path.basename(p).startswith(number + "-")]
    instructor = load(path)
    student = editions.student(instructor, path)["cells"]
    prose = "\n".join(text(c) for c in student if c["cell_type"] == "markdown")
    commands = [step.command.removeprefix("sudo ") for step in seed.steps(stage)]
    assert [c for c in commands if c in prose] == []
    assert any(f'practice("{stage}", challenge=True)' in text(c) for c in student)
    guided = "\n".join(text(c) for c in instructor["cells"])      # the instructor's keeps them
    assert any(c in guided for c in commands)
