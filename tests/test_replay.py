"""Where labs cannot run (no CAP_NET_ADMIN: Binder), a cell that needs the kernel shows what it
printed on a real kernel (labkit.teach.replay.cells, labkit.teach.replay.stored_outputs): real Jupyter kernels
started without capabilities, as a hosted notebook service starts them."""
import base64
import datetime
import glob
import itertools
import json
import os
import sys
import time

import pytest

from labkit.teach.replay import course, stored_outputs
from labkit.teach.replay.cells import NOT_JUDGED, NOT_RECORDED

from harness import kernel_without_capabilities, labkit_env, without_capabilities

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "*.ipynb")))
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


_ids = itertools.count()


def code(source, outputs=(), tags=()):
    return {"cell_type": "code", "execution_count": None, "id": f"cell{next(_ids)}",
            "metadata": {"tags": list(tags)} if tags else {}, "source": source, "outputs": list(outputs)}


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def shown(data):
    return {"output_type": "display_data", "metadata": {}, "data": data}


def notebook(cells):
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


def write(path, cells):
    path.write_text(json.dumps(notebook(cells)))
    return str(path)


# -- finding the recorded cell (plain Python, no kernel) ------------------------------------------

def test_a_cell_is_found_by_its_source_text_normalized(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "directory", lambda: str(tmp_path / "none"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    write(tmp_path / "a.ipynb", [code("lab.up('veth')\n", [stream("a\n")])])
    found = stored_outputs.Finder(str(tmp_path)).find("\nlab.up('veth')   \n\n")
    assert found and found.outputs == [stream("a\n")]
    assert stored_outputs.Finder(str(tmp_path)).find("lab.up('bridge')") is None
    assert stored_outputs.Finder(str(tmp_path)).find("   \n") is None


def test_a_text_that_repeats_is_matched_in_turn_and_an_id_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "directory", lambda: str(tmp_path / "none"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    cells = [code("trace.show()", [stream("first\n")]), code("lab.check()", [stream("x\n")]),
             code("trace.show()", [stream("second\n")])]
    write(tmp_path / "a.ipynb", cells)
    finder = stored_outputs.Finder(str(tmp_path))
    said = [finder.find("trace.show()").outputs[0]["text"] for _ in range(3)]
    assert said == ["first\n", "second\n", "first\n"]        # Run All twice: in turn, then again
    assert finder.find("trace.show()", cell_id=cells[2]["id"]).outputs[0]["text"] == "second\n"


def test_the_notebook_matched_last_and_the_session_notebook_are_preferred(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "directory", lambda: str(tmp_path / "none"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    write(tmp_path / "a.ipynb", [code("lab.down()", [stream("in a\n")])])
    write(tmp_path / "b.ipynb", [code("only_in_b()", [stream("b\n")]), code("lab.down()", [stream("in b\n")])])
    finder = stored_outputs.Finder(str(tmp_path))
    assert finder.find("lab.down()").outputs[0]["text"] == "in a\n"
    assert finder.find("only_in_b()") and finder.find("lab.down()").outputs[0]["text"] == "in b\n"
    monkeypatch.setenv("JPY_SESSION_NAME", "course/b.ipynb")          # Jupyter Server's name
    assert stored_outputs.Finder(str(tmp_path)).find("lab.down()").outputs[0]["text"] == "in b\n"


def test_a_copy_saved_after_a_run_here_gives_way_to_the_pristine_notebook(tmp_path, monkeypatch):
    """A notebook saved after running without privileges (old skip lines, errors, banners)
    holds no recording: the same cell of the notebook of that name in labkit's notebooks/."""
    pristine, copy = tmp_path / "pristine", tmp_path / "copy"
    pristine.mkdir(), copy.mkdir()
    monkeypatch.setattr(course, "directory", lambda: str(pristine))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    write(pristine / "n.ipynb", [code("lab.up('veth')", [stream("real\n"), shown({"image/png": PNG})])])
    banner = shown({"text/plain": stored_outputs.BANNER.format(date="2020-01-01")})
    for wiped in ([stream("(skipped: this cell needs a privileged VM; see the first cell)\n")],
                  [stream(stored_outputs.NOT_JUDGED + "\n")], [stream(stored_outputs.NOT_RECORDED + "\n")],
                  [{"output_type": "error", "ename": "NameError", "evalue": "", "traceback": []}],
                  [banner]):
        write(copy / "n.ipynb", [code("lab.up('veth')", wiped)])
        found = stored_outputs.Finder(str(copy)).find("lab.up('veth')")
        assert found.notebook.path == str(pristine / "n.ipynb"), wiped
        assert found.outputs == [stream("real\n"), shown({"image/png": PNG})]
    write(copy / "n.ipynb", [code("lab.up('veth')", [banner, stream("real\n")])])   # replayed, saved
    assert stored_outputs.Finder(str(copy)).find("lab.up('veth')").outputs == [stream("real\n")]


def test_a_recording_is_dated_by_its_last_commit(tmp_path, monkeypatch):
    """The date of the commit that stored the outputs; a copy made from it (Binder's course/),
    that commit's too; a notebook changed since (outputs stored anew), the day it changed."""
    import subprocess
    repo, copies = tmp_path / "repo", tmp_path / "course"
    repo.mkdir(), copies.mkdir()
    monkeypatch.setattr(course, "directory", lambda: str(repo))
    monkeypatch.setattr(stored_outputs, "_dates", {})
    path = write(repo / "n.ipynb", [code("x", [stream("1\n")])])
    env = {**os.environ, "GIT_COMMITTER_DATE": "2024-02-03T10:00:00", "GIT_AUTHOR_DATE": "2024-02-03T10:00:00",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["init", "-q"], ["add", "n.ipynb"], ["commit", "-q", "-m", "recorded"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True, capture_output=True)
    copy = write(copies / "n.ipynb", [code("x", [stream("1\n")])])
    assert stored_outputs.recorded_on(path) == "2024-02-03" == stored_outputs.recorded_on(copy)
    write(repo / "n.ipynb", [code("x", [stream("2\n")])])
    monkeypatch.setattr(stored_outputs, "_dates", {})
    assert stored_outputs.recorded_on(path) == datetime.date.today().isoformat()


# -- real kernels without capabilities --------------------------------------------------------------

@pytest.fixture
def nocaps(tmp_path, monkeypatch):
    """Runs a notebook top to bottom in a Jupyter kernel without any capability, in `cwd`;
    returns the executed notebook (a cell whose reply is an error fails the run, unless
    tagged raises-exception)."""
    monkeypatch.setenv("JUPYTER_PATH", kernel_without_capabilities(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    env = labkit_env(LABKIT_RUN_DIR=str(tmp_path / "run"), IPYTHONDIR=str(tmp_path / "ipy"),
                     MPLCONFIGDIR=str(tmp_path / "mpl"))

    def run(nb, cwd):
        import nbformat
        from nbclient import NotebookClient
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        NotebookClient(nb, kernel_name="nocaps", timeout=120,
                       resources={"metadata": {"path": str(cwd)}}).execute(env=env)
        return nb
    return run


def texts(outputs, name="stdout"):
    return "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream" and o["name"] == name)


def displays(outputs):
    return [{k: "".join(v).strip() if isinstance(v, (list, str)) else v for k, v in o["data"].items()}
            for o in outputs if "data" in o]


def banner_of(outputs):
    plain = [d.get("text/plain", "") for d in displays(outputs)]
    return next((p for p in plain if p.startswith("recorded on a real kernel on ")), None)


@pytest.mark.kernel
def test_cells_that_need_the_kernel_replay_their_recording(nocaps, tmp_path):
    setup = "import labkit.teach.notebook; labkit.teach.notebook.setup()"
    cells = [
        code(setup, [stream("labkit is ready\n")]),
        code("from labkit import Lab\nlab = Lab('np')\nlab.up('veth')", [stream("up\n"), shown(
            {"image/png": PNG, "text/plain": "<picture>"})]),
        code("print('partly')\nlab.up('bridge')", [stream("partly\nand the rest\n")]),
        code("trace = lab.up('two-veths')"),
        code("trace", [shown({"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "t"})]),
        code("%%lab host\nip -br link", [stream("root@host:~# ip -br link\nlo  UNKNOWN\n")]),
        code("print('partly')\nlab.up('bridge')", [stream("partly\nthe second time\n")]),
        code("1 + 1", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                        "data": {"text/plain": "2"}}]),
        code("from labkit.teach.notebook import lesson\nlesson.check('intro-gateway', '10.0.2.1', lab)",
             [shown({"text/plain": "Right: 10.0.2.2. Why: ..."})]),
        code("students_own_name", tags=["raises-exception"]),
    ]
    write(tmp_path / "course.ipynb", cells)
    typed = code("lab.up('outside')   # typed by the student: not in the stored notebook")
    run = nocaps(notebook(cells + [typed]), tmp_path)
    out = [c["outputs"] for c in run["cells"]]
    date = datetime.date.fromtimestamp(os.stat(tmp_path / "course.ipynb").st_mtime).isoformat()
    banner = f"recorded on a real kernel on {date}; run it yourself in a VM"
    assert "needs a privileged Linux VM" in texts(out[0]) and "recorded for them on a real kernel" in texts(out[0])
    assert banner_of(out[1]) == banner and texts(out[1]) == "up\n"
    assert {"image/png": PNG, "text/plain": "<picture>"} in displays(out[1])
    assert texts(out[2]) == "partly\nand the rest\n"          # what it printed first is cleared
    assert banner_of(out[3]) == banner and texts(out[3]) == ""
    assert banner_of(out[4]) and "<table>" in str(displays(out[4]))   # NameError after a replay
    assert banner_of(out[5]) and texts(out[5]) == "root@host:~# ip -br link\nlo  UNKNOWN\n"
    assert texts(out[6]) == "partly\nthe second time\n"       # the same text: its own turn
    assert banner_of(out[7]) is None and displays(out[7]) == [{"text/plain": "2"}]   # runs for real
    assert texts(out[8]).strip() == NOT_JUDGED and "Right" not in str(out[8])
    assert out[9][0]["output_type"] == "error" and out[9][0]["ename"] == "NameError"
    assert texts(out[10]).strip() == NOT_RECORDED


def test_with_privileges_setup_installs_nothing_of_the_replay(tmp_path):
    """As root with CAP_NET_ADMIN: the same message as before, NotPrivileged alone handled
    (nbval compares what every cell really printed), the %%lab magic itself."""
    import subprocess
    script = ("from IPython.testing.globalipapp import start_ipython\n"
              "ip = start_ipython()\n"
              "ip.run_cell('import labkit.teach.notebook; labkit.teach.notebook.setup()')\n"
              "from labkit.errors import NotPrivileged\nfrom labkit.teach.notebook import magic\nfrom labkit.teach.replay import cells\n"
              "print(ip.custom_exceptions == (NotPrivileged,), not cells._installed,\n"
              "      ip.magics_manager.magics['cell']['lab'] is magic.lab_magic)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "IPYTHONDIR": str(tmp_path / "ipy"),
                                 "LABKIT_RUN_DIR": str(tmp_path / "run")})
    said = result.stdout + result.stderr
    assert "labkit is ready: root with CAP_NET_ADMIN; labs run on this kernel." in said, said
    assert said.strip().splitlines()[-1] == "True True True", said


def rich(outputs) -> set:
    """What a reader sees in a cell's outputs beyond text: a picture, a table."""
    found = set()
    for d in displays(outputs):
        if "image/png" in d or "image/svg+xml" in d:
            found.add("picture")
        if "<table" in d.get("text/html", ""):
            found.add("table")
    return found


def _student_editions(tmp_path):
    from labkit.teach.printed.stored import write_student
    return write_student(str(tmp_path / "student"))


@pytest.mark.kernel
@pytest.mark.parametrize("edition", ["instructor", "student"])
def test_binder_run_all_leaves_every_notebook_as_rich_as_stored(edition, nocaps, tmp_path):
    """Binder, as a student meets it: each notebook run top to bottom in a fresh kernel without
    CAP_NET_ADMIN (which notebook it is, the kernel finds by the cells' text). No cell fails or
    shows a traceback; each cell that had a picture or a table stored still shows one; each
    replayed cell shows exactly what was stored for it."""
    import nbformat
    paths = NOTEBOOKS if edition == "instructor" else _student_editions(tmp_path)
    assert paths
    replayed, cells, start = 0, 0, time.monotonic()
    for path in paths:
        stored = nbformat.read(path, as_version=4)
        run = nocaps(stored, os.path.dirname(os.path.abspath(path)))
        for i, (before, after) in enumerate(zip(stored.cells, run.cells)):
            if before.cell_type != "code":
                continue
            cells += 1
            where = f"{os.path.basename(path)} cell {i + 1}: {before.source[:60]!r}"
            assert not [o for o in after.outputs if o["output_type"] == "error"], where
            assert "Traceback" not in texts(after.outputs) + texts(after.outputs, "stderr"), where
            assert rich(before.outputs) <= rich(after.outputs), where
            if banner_of(after.outputs):
                replayed += 1
                kept = [o for o in before.outputs if stored_outputs.is_recording(o)]
                assert texts(after.outputs) == texts(kept), where
                assert displays(after.outputs)[1:] == displays(kept), where
    took = time.monotonic() - start
    print(f"\n{edition}: {len(paths)} notebooks, {cells} code cells, {replayed} replayed, {took:.1f} s")
    assert replayed > len(paths)          # most cells need the kernel: they were replayed, not erased


# -- plan mode of the widgets, on the recorded run -------------------------------------------------

def test_the_shipped_recording_covers_every_stage_as_its_check_expects():
    from labkit.model import stages
    from labkit.teach.replay import traffic_log
    run = traffic_log.load()
    assert set(run.takes) == set(stages.STAGES) and run.date
    checked = 0
    for stage, takes in run.takes.items():
        for take in takes:
            if take.expect is not None:
                checked += 1
                assert take.ok == take.expect, (stage, take.source, take.target, take.said)
            if take.ok:
                assert len(take.packets) and take.packets.points, (stage, take.source, take.target)
    assert checked >= sum(1 for v in traffic_log.reach.PROBES.values() for p in v   # lookups
                          if not p.target.startswith(traffic_log.reach.NAME))           # aside


def test_stepper_and_tester_without_privileges_work_on_plans_and_the_recording(monkeypatch):
    from labkit.kernel import privilege
    from labkit.teach.notebook import widgets

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"plan mode touched the lab: {name}")

    monkeypatch.setattr(privilege, "missing_capabilities", lambda: ["CAP_NET_ADMIN"])
    s = widgets.StageStepper(Untouchable())
    assert isinstance(s, widgets.PlannedStepper) and s.lab is None
    assert s.go("two-veths") and s.go("bridge") and "br0" in s.diagram.value
    assert s.view.model.chip("host", "br0").status == "added"          # marked against two-veths
    assert "labkit-reachability" in s.reach.value and "recorded on a real kernel" in s.reach.value
    t = widgets.TrafficTester(Untouchable(), source="world", target="10.0.2.15:5000", method="http")
    assert isinstance(t, widgets.PlannedTraffic) and t.stage.value == "publish"  # first answered
    assert t.send() is True and "HTTP 200" in t.text() and "recorded on a real kernel" in t.text()
    assert "<svg" in t.ladder.value and "labkit-capture" in t.table.value
    t.stage.value = "outside"                                    # not published yet: refused
    assert "Failed to connect" in t.text() and t.source.value == "world"
    t.target.value = "192.0.2.1"
    assert t.send() is None and "was not recorded at stage outside" in t.text()
    t.stage.value = "veth"
    assert t.source.options == ("host", "world", "netns0")       # the stage's plan
    monkeypatch.setattr(privilege, "missing_capabilities", lambda: [])
    assert type(widgets.StageStepper(Untouchable())) is widgets.StageStepper   # root: unchanged


def test_a_capture_viewer_shows_a_recorded_capture():
    from labkit.errors import UnknownName
    from labkit.teach.replay import traffic_log
    from labkit.teach.notebook import widgets
    v = widgets.CaptureViewer(traffic_log.load().packets("outside", "netns0", "203.0.113.80"))
    assert v.apply() > 0 and "10.0.2.15" in v.table.value        # masqueraded on the way out
    with pytest.raises(UnknownName, match="recorded there: host -> 172.18.0.10"):
        traffic_log.load().packets("veth", "netns1", "172.18.0.10")


@pytest.mark.kernel
def test_plan_mode_in_a_process_without_capabilities(tmp_path):
    script = ("from labkit import Lab\nfrom labkit.teach.notebook import widgets\n"
              "s = widgets.StageStepper(Lab())\nt = widgets.TrafficTester(Lab())\n"
              "print(type(s).__name__, s.go('outside'), type(t).__name__, t.send())\n")
    result = without_capabilities("-c", script, LABKIT_RUN_DIR=str(tmp_path), MPLCONFIGDIR=str(tmp_path / "mpl"))
    assert result.stdout.split() == ["PlannedStepper", "True", "PlannedTraffic", "True"], \
        result.stdout + result.stderr


def _comparable(take):
    """Answered or not, the account, and where an answered probe's packets were seen (where an
    unanswered one went depends on the neighbour caches the stages before left)."""
    import re
    said = re.sub(r"after \d+ ms", "after N ms", take.said)
    return take.ok, said, sorted({p.point for p in take.packets if p.headers.proto != "arp"
                                  and take.ok})


@pytest.mark.kernel
def test_a_fresh_recording_matches_the_shipped_one(lab, tmp_path):
    """The recorder run on a real kernel (two stages): each probe answered or not as shipped,
    with the same account, an answer seen at the same points; so the shipped run cannot drift."""
    from labkit.teach.replay import log_traffic, traffic_log
    path = str(tmp_path / "run.json.gz")
    traffic_log.write(path, log_traffic.record(lab, ["two-veths", "publish"]))
    fresh, shipped = traffic_log.load(path), traffic_log.load()
    for stage in ("two-veths", "publish"):
        assert [(t.source, t.target) for t in fresh.takes[stage]] == \
               [(t.source, t.target) for t in shipped.takes[stage]]
        for new, old in zip(fresh.takes[stage], shipped.takes[stage]):
            assert _comparable(new) == _comparable(old), (stage, new.source, new.target)


@pytest.mark.kernel
def test_the_recorder_command_writes_a_run_and_takes_its_lab_down(tmp_path):
    import subprocess
    from labkit.lab import journal
    from labkit.pytest_plugin import unique_lab_name
    from labkit.teach.replay import traffic_log
    name, path = unique_lab_name(), tmp_path / "run.json.gz"
    result = subprocess.run([sys.executable, "-m", "labkit.teach.replay.log_traffic", "veth", "-o", str(path),
                             "--lab", name], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "probes at 1 stages" in result.stdout, result.stdout + result.stderr
    assert name not in journal.labs()
    run = traffic_log.load(str(path))
    assert list(run.takes) == ["veth"]
    assert run.take("veth", "host", "172.18.0.10").ok and not run.take("veth", "world", "172.18.0.10").ok


def test_the_first_cell_says_why_a_users_world_could_not_be_made(monkeypatch, capsys):
    """Where the labkit kernel could not make the user's world, setup() says why, once."""
    from labkit.kernel import privilege
    from labkit.teach import notebook
    from labkit.teach.notebook import first_cell
    monkeypatch.setattr(privilege, "missing_capabilities", lambda: ["CAP_NET_ADMIN"])
    monkeypatch.setenv("LABKIT_WORLD_PROBLEM", "user.max_user_namespaces is 0: sysctl -w "
                       "user.max_user_namespaces=15000")
    monkeypatch.setitem(first_cell._state, "told", False)
    notebook.setup()
    out = capsys.readouterr().out
    assert "could not be made: user.max_user_namespaces is 0" in out
