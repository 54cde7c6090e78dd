"""The suite's tiers and its parallel run (loaded for every run by `-p tiers` in pyproject's
addopts, whatever paths are given: tests/conftest.py is not read when only notebooks/ is).

The tiers, each a marker given here to what the tests need (`-m` selects):
- `unit`: no root, no namespaces, no Jupyter kernel: tests/unit, seconds, while developing;
- `kernel`: root and real network namespaces; `notebook`: a notebook under nbval (root too);
- `users`: normal users made with useradd and their worlds (root to make them);
- `root`: every test that needs root for any step (kernel, notebook, users);
- `browser`: chromium.
Run in parallel (pytest-xdist, `-n`), each worker first moves into a fresh machine's view
(tests/freshview.py): /run/netns, /run/labkit and /etc/netns absent and its own, so workers
run notebooks on the default lab side by side, and every run meets a machine without those
folders. Work is handed out by file (`--dist loadfile`): a notebook's cells run in order on
one worker, and so do the users' tests (their homes are the machine's, shared by the views).
The controller checks that the machine itself is left as it was (labkit.pytest_plugin).
"""
import os

import pytest

USERS_FIXTURES = {"users", "user1", "user2"}


def _worker(config) -> bool:
    return hasattr(config, "workerinput")


def _parallel(config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not _worker(config)


def pytest_configure(config):
    for line in ("unit: no root, no namespaces, no Jupyter kernel (tests/unit)",
                 "notebook: a notebook run under nbval (needs root)",
                 "users: normal users made with useradd, and their worlds (needs root)",
                 "root: needs root for some step (every kernel, notebook and users test)"):
        config.addinivalue_line("markers", line)
    if _worker(config) and os.geteuid() == 0:
        import freshview
        freshview.enter()
    if "LABKIT_STATE_DIR" not in os.environ:  # checks record into it (labkit.lab.progress)
        import tempfile
        os.environ["LABKIT_STATE_DIR"] = tempfile.mkdtemp(prefix="labkit-test-state-")
        config._labkit_state_dir = os.environ["LABKIT_STATE_DIR"]


def pytest_unconfigure(config):
    made = getattr(config, "_labkit_state_dir", None)
    if made:
        import shutil
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop("LABKIT_STATE_DIR", None)


def pytest_collection_modifyitems(config, items):
    unit_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit") + os.sep
    for item in items:
        path = str(item.path)
        if path.endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)
        if USERS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.users)
        if any(item.get_closest_marker(m) for m in ("kernel", "notebook", "users")):
            item.add_marker(pytest.mark.root)
        elif path.startswith(unit_dir):
            item.add_marker(pytest.mark.unit)


def pytest_sessionstart(session):
    if _parallel(session.config) and os.geteuid() == 0:
        from labkit.pytest_plugin import machine_snapshot
        session.config._labkit_machine_before = machine_snapshot()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_labkit_machine_before", None)
    if before is None:
        return
    from labkit.pytest_plugin import machine_snapshot, snapshot_differences
    changed = snapshot_differences(before, machine_snapshot())
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line("\n".join(["labkit leak check: the machine changed during the tests "
                                       "(seen from outside the workers' views):", *changed]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
