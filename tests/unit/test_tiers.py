"""The suite's own machinery: tiers given by what a test needs, and the leak check of the
machine itself that the controller of a parallel run makes (tests/tiers.py)."""
import os
import types

import pytest

import tiers


class Reporter:
    def __init__(self):
        self.lines = []

    def write_line(self, line, **_):
        self.lines.append(line)


def _session(numprocesses=4, worker=False):
    reporter = Reporter()
    config = types.SimpleNamespace(option=types.SimpleNamespace(numprocesses=numprocesses),
                                   pluginmanager=types.SimpleNamespace(get_plugin=lambda _: reporter))
    if worker:
        config.workerinput = {}
    return types.SimpleNamespace(config=config, exitstatus=0), reporter


def test_only_the_controller_of_a_parallel_run_checks_the_machine():
    assert tiers._parallel(_session()[0].config)
    assert not tiers._parallel(_session(numprocesses=0)[0].config)       # -n0: one process
    assert not tiers._parallel(_session(worker=True)[0].config)          # a worker: its own view


def test_a_change_of_the_machine_seen_by_the_controller_fails_the_run(monkeypatch):
    import labkit.pytest_plugin as plugin
    session, reporter = _session()
    session.config._labkit_machine_before = {"links": "1: lo", "/run/netns": "(none)"}
    monkeypatch.setattr(plugin, "machine_snapshot", lambda: {"links": "1: lo\n9: veth0",
                                                             "/run/netns": "(none)"})
    tiers.pytest_sessionfinish(session, 0)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "links changed" in reporter.lines[0] and "+9: veth0" in reporter.lines[0]


def test_an_unchanged_machine_passes(monkeypatch):
    import labkit.pytest_plugin as plugin
    session, reporter = _session()
    session.config._labkit_machine_before = {"links": "1: lo"}
    monkeypatch.setattr(plugin, "machine_snapshot", lambda: {"links": "1: lo"})
    tiers.pytest_sessionfinish(session, 0)
    assert session.exitstatus == 0 and not reporter.lines


PRINT_MARKS = """
import pytest
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        print("MARKS", item.nodeid, *sorted({m.name for m in item.iter_markers()}))
"""


def test_each_test_is_marked_by_what_it_needs(tmp_path):
    import subprocess
    import sys
    from harness import REPO
    (tmp_path / "print_marks.py").write_text(PRINT_MARKS)
    notebook = "notebooks/01-namespaces-and-veth.ipynb"
    users = "tests/test_rootless.py::test_a_user_runs_every_stage_in_a_world_that_ends_with_the_last_lab"
    out = subprocess.run([sys.executable, "-m", "pytest", "-n0", "--collect-only", "-q", "-s",
                          "-p", "print_marks", notebook, "tests/test_rootless.py",
                          "tests/test_journal.py", "tests/unit/test_plan.py"],
                         capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}).stdout
    marks = {line.split()[1]: set(line.split()[2:]) for line in out.splitlines()
             if line.startswith("MARKS ")}
    assert marks, out
    for nodeid, have in marks.items():
        if nodeid.startswith(notebook):
            assert {"notebook", "root"} <= have, nodeid
        elif nodeid.startswith("tests/test_journal.py"):
            assert {"kernel", "root"} <= have, nodeid
        elif nodeid.startswith("tests/unit/"):
            assert "unit" in have and "root" not in have, nodeid
    assert {"users", "root"} <= marks[users]
