"""A real browser: JupyterLab in Debian's chromium, driven by Playwright (issue 12).

One JupyterLab on 127.0.0.1 serves a temporary copy of notebooks/; one chromium (1400x900,
file browser open) opens each notebook that shows a widget (StageStepper, TrafficTester,
CaptureViewer; found by grepping the notebooks), clears its outputs and runs every cell.
It runs the cells up to each widget, uses the widget the way the notebook's text says
(buttons, dropdowns, text inputs) and checks what appears (a new diagram, "answered" or "no
answer", the packet count), then runs the rest of the notebook. Pausing at the widgets, and
not running them after "Run All", matters: each notebook ends with `lab.down()`, so a widget
used after the last cell would drive a lab that is gone. Then, over the whole notebook: no
"Error displaying widget", no traceback, no uncaught error in the page, and no output (nor a
drawing in it) wider than its area. A screenshot of each widget goes to the test's tmp_path.

The notebooks run for real in the default lab, which other developers' notebook runs also use:
the test holds /tmp/labkit-notebooks.lock (as `flock /tmp/labkit-notebooks.lock ...` does)
while JupyterLab runs. CI runs tests one at a time, so the lock only matters in development.
Needs /usr/bin/chromium (install.sh installs it) and playwright from PyPI (the test extra);
never `playwright install`. Deselect with -m 'not browser'.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.kernel,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"no {CHROMIUM}: install Debian's chromium (./install.sh does), "
                              "or deselect with -m 'not browser'"),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: .venv/bin/pip install -e '.[test]'")

from labkit.model import stages  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LOCK = "/tmp/labkit-notebooks.lock"
WIDTH, HEIGHT = 1400, 900
SLACK = 1                                # px a browser may round a width by
RUN_TIMEOUT = 300                        # s for a run of cells (labs converge in them)
CLICK_TIMEOUT = 120_000                  # ms for what a widget shows after a click
KINDS = {"StageStepper": "stepper", "PlannedStepper": "stepper", "TrafficTester": "tester",
         "PlannedTraffic": "tester", "CaptureViewer": "viewer"}
MADE = re.compile(r"\b(%s)\s*\(" % "|".join(KINDS))
VIEWER_NOTEBOOK = "zz-capture-viewer.ipynb"   # written when no course notebook shows one
WIDGET_VIEW = ".jp-OutputArea-output:has(.jupyter-widgets)"   # an output showing a widget
PROMPTS = "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(c => " \
          "c.classList.contains('jp-CodeCell') ? c.querySelector('.jp-InputPrompt').textContent : null)"


def widget_cells(path: Path) -> list[tuple[int, str]]:
    """(cell index, widget kind) of each code cell that makes a widget."""
    cells = json.loads(path.read_text())["cells"]
    found = []
    for i, cell in enumerate(cells):
        made = MADE.findall("".join(cell["source"])) if cell["cell_type"] == "code" else []
        if made:
            found.append((i, KINDS[made[-1]]))
    return found


def course_notebooks() -> list[str]:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if widget_cells(p))
    if not any(kind == "viewer" for n in names for _, kind in widget_cells(NOTEBOOKS / n)):
        names.append(VIEWER_NOTEBOOK)
    return names


def viewer_notebook(path: Path) -> None:
    """A notebook showing a CaptureViewer over a recorded capture (a ping and its ARP; no lab)."""
    code = ["from labkit.teach.replay import traffic_log\n",
            "from labkit.teach.notebook.widgets import CaptureViewer\n",
            "\n",
            "CaptureViewer(traffic_log.load().packets('bridge', 'netns0', '172.18.0.20'))"]
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# viewer"]},
                    {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": code},
                    {"cell_type": "markdown", "id": "c", "metadata": {}, "source": ["end"]}]}
    path.write_text(json.dumps(nb))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _poll(what: str, ready, timeout: float, interval: float = 0.1):
    """ready() until it returns something true (returned); AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = ready()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Server:
    """A JupyterLab process and its REST API."""

    def __init__(self, root: Path, home: Path):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime = home / "runtime"
        settings = home / "settings"
        for path, value in (("notebook-extension/tracker", {"windowingMode": "none"}),
                            ("apputils-extension/notification",
                             {"fetchNews": "false", "checkForUpdates": False})):
            file = settings / "@jupyterlab" / f"{path}.jupyterlab-settings"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(value))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.runtime), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
        self.log = home / "jupyterlab.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                 "--ip", "127.0.0.1", "--port", str(self.port), "--allow-root",
                 f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
                 "--ServerApp.port_retries=0"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def wait_ready(self) -> None:
        def answers():
            if self.process.poll() is not None:
                raise AssertionError(f"JupyterLab exited ({self.process.returncode}):\n"
                                     f"{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                return self.api("status")
        _poll("JupyterLab to answer /api/status", answers, 120)

    def shut_down_kernel(self, name: str) -> None:
        """Shut down the kernel of notebook `name` (it owns the default lab while it lives)."""
        for session in self.api("sessions"):
            if session["path"] == name:
                self.api(f"sessions/{session['id']}", "DELETE")
        _poll(f"the kernel of {name} to go",
              lambda: not any(s["path"] == name for s in self.api("sessions")), 60)

    def _kernels_left(self) -> list[int]:
        """Pids of processes started with a connection file in our runtime directory."""
        pids = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and str(self.runtime) in \
                        (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """Terminate JupyterLab (it shuts its kernels down), then kill; nothing left running."""
        with contextlib.suppress(OSError, ValueError):
            for kernel in self.api("kernels"):
                self.api(f"kernels/{kernel['id']}", "DELETE")
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(AssertionError):
            _poll("the kernels to exit", lambda: not self._kernels_left(), 10)
        left = self._kernels_left()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        assert not left, f"kernels left running after JupyterLab stopped (killed): {left}"


def _ancestor_holds(path: str) -> int | None:
    """The pid of this process's ancestor holding the flock on `path` (`flock LOCK pytest`), if one does."""
    st = os.stat(path)
    file = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as locks:
        holders = {int(f[4]) for f in (line.split() for line in locks)
                   if f[1] == "FLOCK" and f[5] == file}
    pid = os.getppid()
    while pid > 1:
        if pid in holders:
            return pid
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rsplit(")", 1)[1].split()[1])
    return None


@pytest.fixture(scope="module")
def notebooks_lock():
    """Hold the notebooks' lock (the default lab is shared); leave that lab down.

    Under `flock /tmp/labkit-notebooks.lock pytest ...` the lock is already ours: taking it
    again from here would wait for ever."""
    with open(LOCK, "a") as lock:
        holder = _ancestor_holds(LOCK)
        waited = time.monotonic()
        if holder is None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        print(f"waited {time.monotonic() - waited:.0f}s for {LOCK}"
              + (f" (held for this test by its parent process {holder})" if holder else ""))
        try:
            yield
        finally:
            from labkit import Lab
            from labkit.lab.owner import LabOwned
            with contextlib.suppress(LabOwned):   # a live kernel's lab is not ours to take down
                Lab().down()         # a no-op unless a notebook stopped before its last cell
            if holder is None:
                fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    viewer_notebook(root / VIEWER_NOTEBOOK)
    server = Server(root, home)
    try:
        server.wait_ready()
        yield server, root
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        finally:
            chromium.close()


class Notebook:
    """One notebook open in JupyterLab: select a cell, run cells from the menus, read prompts."""

    def __init__(self, page, name: str):
        self.page, self.name = page, name
        self.cells = page.locator(".jp-Notebook .jp-Cell")

    def menu(self, menu: str, command: str) -> None:
        self.page.locator(".lm-MenuBar-item", has_text=menu).first.click()
        self.page.locator(f'.lm-Menu li[data-command="{command}"]').click()

    def select(self, index: int) -> None:
        prompt = self.cells.nth(index).locator(".jp-InputPrompt").first
        prompt.scroll_into_view_if_needed()
        prompt.click()
        sync_api.expect(self.cells.nth(index)).to_have_class(re.compile(r"\bjp-mod-active\b"))

    def prompts(self) -> list[str | None]:
        return self.page.evaluate(PROMPTS)

    def run(self, menu_command: str, upto: int, select: int | None = None) -> None:
        """Run cells with a Run menu command; wait until every code cell before `upto` has run."""
        if select is not None:
            self.select(select)
        self.menu("Run", menu_command)

        def done():
            failed = self.page.locator(".jp-OutputArea-output", has_text="Traceback")
            if failed.count():
                text = failed.first.inner_text()          # the error's own line is the last
                raise AssertionError(f"{self.name}: a cell failed:\n{text[:600]}\n...\n{text[-1500:]}")
            prompts = [p for p in self.prompts()[:upto] if p is not None]
            return all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        _poll(f"{self.name}: cells up to {upto} to run (prompts now: {self.prompts()[:upto]})",
              done, RUN_TIMEOUT, 0.25)
        self.wait_idle()

    def wait_idle(self) -> None:
        """Until the status bar says the notebook's kernel is there and idle."""
        sync_api.expect(self.page.locator("#jp-main-statusbar")).to_contain_text(
            re.compile(r"\(ipykernel\) \| Idle"), timeout=CLICK_TIMEOUT)

    def widget(self, index: int):
        """The widget shown by cell `index` (exactly one)."""
        views = self.cells.nth(index).locator(WIDGET_VIEW)
        sync_api.expect(views).to_have_count(1)
        view = views.first
        sync_api.expect(view.locator(".jupyter-widgets").first).to_be_visible()
        view.evaluate("v => v.scrollIntoView({block: 'start'})")
        return view


def _svgs(view) -> list[str]:
    """The widget's drawings (outer SVG elements), as markup."""
    return view.evaluate("v => [...v.querySelectorAll('svg')].filter(s => !s.parentElement"
                         ".closest('svg')).map(s => s.outerHTML)")


def _drawn(view, before: list[str], what: str) -> None:
    """A drawing appeared that was not there before, visible and at least 300 px wide."""
    _poll(f"{what}: a new drawing", lambda: set(_svgs(view)) - set(before), 30)
    widths = view.evaluate("v => [...v.querySelectorAll('svg')].filter(s => !s.parentElement"
                           ".closest('svg')).map(s => s.getBoundingClientRect().width)")
    assert max(widths) >= 300, f"{what}: the drawings are {widths} px wide: hardly visible"


def _status(view, pattern: str, what: str) -> str:
    """Wait until the widget's text (as shown: one line per line) matches `pattern`; the match."""
    def found():
        return re.search(pattern, view.inner_text())
    try:
        return _poll(f"{what}: {pattern!r}", found, CLICK_TIMEOUT / 1000, 0.2).group(0)
    except AssertionError as e:
        raise AssertionError(f"{e}; the widget says:\n{view.inner_text()[:2000]}") from None


def use_stepper(view, shots: Path) -> list[str]:
    """next, then back (back, then next at the last stage): each goes to the neighbouring
    stage, converging the lab, and draws a new diagram."""
    said = []
    current = _status(view, r"at stage (\S+)", "stepper").split()[-1]
    i = stages.STAGES.index(current)
    steps = [("next", stages.STAGES[i + 1]), ("back", current)] if i + 1 < len(stages.STAGES) \
        else [("back", stages.STAGES[i - 1]), ("next", current)]
    for button, stage in steps:
        before = _svgs(view)
        view.get_by_role("button", name=button).click()
        said.append(_status(view, rf"at stage {re.escape(stage)}(?!\S)", f"stepper {button}"))
        _drawn(view, before, f"stepper {button} to {stage}")
        view.screenshot(path=str(shots / f"stepper-{stage}.png"))
    return said


def _send(view, what: str, pattern: str, source: str | None = None, target: str | None = None,
          method: str | None = None) -> str:
    if source is not None:
        view.locator(".widget-dropdown select").first.select_option(source)
    if method is not None:
        view.locator(".widget-toggle-buttons").get_by_role("button", name=method, exact=True).click()
    if target is not None:
        view.locator(".widget-text input").first.fill(target)
    before = _svgs(view)
    view.get_by_role("button", name=re.compile(r"^(send|show recorded)$")).click()
    said = _status(view, pattern, what)
    _drawn(view, before, what)
    return said


def use_tester(view, shots: Path) -> list[str]:
    """The notebook's probe from host (it fails, as the text says), pings that are answered
    and not answered, then the notebook's probe again."""
    said = [_status(view, r"GET \S+ from \S+: [^\n]+", "tester as the cell left it")]
    target = re.search(r"GET (\S+) from", said[0]).group(1)
    said.append(_send(view, "tester from host", rf"GET {re.escape(target)} from host: [^\n]+",
                      source="host"))
    assert not re.search(r"HTTP [23]\d\d", said[-1]), f"the host's own request got through: {said[-1]}"
    said.append(_send(view, "tester ping answered", r"ping netns0 -> 203\.0\.113\.80: answered",
                      source="netns0", method="ping", target="203.0.113.80"))
    view.screenshot(path=str(shots / "tester-answered.png"))
    said.append(_send(view, "tester ping not answered", r"ping netns0 -> 172\.18\.0\.99: no answer",
                      target="172.18.0.99"))
    said.append(_send(view, "tester back to the notebook's probe",
                      rf"GET {re.escape(target)} from world: HTTP 200", source="world",
                      method="http", target=target))
    return said


def use_viewer(view, shots: Path) -> list[str]:
    """Filter by protocol (fewer packets, a new ladder), a port that is not a number (named),
    no port, then all again (the whole ladder back)."""
    count = r"(\d+) of (\d+) packets"
    said = [_status(view, count, "viewer")]
    total = int(re.fullmatch(count, said[0]).group(2))
    proto = view.locator(".widget-dropdown select").first
    port = view.locator(".widget-text input").nth(1)
    before = _svgs(view)
    proto.select_option("arp")
    said.append(_status(view, rf"(?<!\d)(?!{total} )\d+ of {total} packets", "viewer arp"))
    arp = int(said[-1].split()[0])
    assert 0 < arp < total, f"the viewer shows {arp} ARP packets of {total}"
    _drawn(view, before, "viewer arp")
    view.screenshot(path=str(shots / "viewer-arp.png"))
    port.fill("http")
    said.append(_status(view, r"port 'http' is not a number: write e\.g\. 5000", "viewer bad port"))
    port.fill("")
    said.append(_status(view, rf"(?<!\d){arp} of {total} packets", "viewer no port"))
    before = _svgs(view)
    proto.select_option("all")
    said.append(_status(view, rf"(?<!\d){total} of {total} packets", "viewer all"))
    _drawn(view, before, "viewer all")
    return said


USE = {"stepper": use_stepper, "tester": use_tester, "viewer": use_viewer}

# Outputs wider than their area, boxes in them that scroll sideways, and drawings that stick
# out of their output (SLACK px allowed). A table in its own box (widgets.boxed) may scroll:
# those come back apart, as `tables`, to report.
TOO_WIDE = """slack => {
  const bad = [], tables = [];
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  for (const out of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {
    const cell = cells.findIndex(c => c.contains(out));
    if (out.scrollWidth > out.clientWidth + slack)
      bad.push(`cell ${cell}: output ${out.scrollWidth} px wide in ${out.clientWidth} px`);
    for (const el of out.querySelectorAll('*')) {
      if (!['auto', 'scroll'].includes(getComputedStyle(el).overflowX)) continue;
      if (el.scrollWidth <= el.clientWidth + slack) continue;
      const what = `cell ${cell}: a ${el.className || el.tagName} scrolls sideways `
                   + `(${el.scrollWidth} px in ${el.clientWidth} px)`;
      (el.children.length === 1 && el.firstElementChild.tagName === 'TABLE' ? tables : bad).push(what);
    }
    const box = out.getBoundingClientRect();
    for (const el of out.querySelectorAll('svg, img, canvas')) {
      if (el.parentElement.closest('svg')) continue;
      const r = el.getBoundingClientRect();
      if (r.width && (r.right > box.right + slack || r.left < box.left - slack))
        bad.push(`cell ${cell}: a ${el.tagName} at x ${r.left.toFixed(1)} to ${r.right.toFixed(1)} `
                 + `sticks out of its output at x ${box.left.toFixed(1)} to ${box.right.toFixed(1)}`);
    }
  }
  return {bad, tables};
}"""


@pytest.mark.parametrize("name", course_notebooks())
def test_widgets_in_a_browser(name, jupyterlab, browser, notebooks_lock, tmp_path):
    """Run the notebook in JupyterLab, use each widget, then check what the page shows."""
    server, root = jupyterlab
    shots = tmp_path
    widgets = widget_cells(root / name)
    assert widgets, f"{name} makes no widget"
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.url}/lab/tree/{name}?reset&token={server.token}")
        nb = Notebook(page, name)
        total = len(json.loads((root / name).read_text())["cells"])
        sync_api.expect(nb.cells).to_have_count(total, timeout=60_000)
        nb.wait_idle()
        browser_panel = page.locator("#filebrowser")
        sync_api.expect(browser_panel).to_be_visible()
        assert browser_panel.bounding_box()["width"] >= 200, "the file browser is not open"
        nb.menu("Edit", "editmenu:clear-all")
        _poll("outputs cleared", lambda: not any(p and re.search(r"\d", p) for p in nb.prompts()), 30)

        said = {}
        for index, kind in widgets:
            if index + 1 < total:
                nb.run("notebook:run-all-above", index + 1, select=index + 1)
            else:
                nb.run("runmenu:run-all", total)
            view = nb.widget(index)
            page.screenshot(path=str(shots / f"{Path(name).stem}-cell{index}-before.png"))
            said[f"cell {index} ({kind})"] = USE[kind](view, shots)
        rest = widgets[-1][0] + 1                    # the rest of the notebook, if any
        if rest == total - 1:                        # JupyterLab: no "and all below" at the end
            nb.run("runmenu:run", total, select=rest)
        elif rest < total:
            nb.run("notebook:run-all-below", total, select=rest)
        print(f"{name}: " + json.dumps(said, indent=1))

        nb.widget(widgets[-1][0])
        page.screenshot(path=str(shots / f"{Path(name).stem}.png"))
        shown = page.locator(WIDGET_VIEW).count()
        assert shown == len(widgets), \
            f"{name} shows {shown} widgets, the test used {len(widgets)}: pause at the others too"
        broken = page.get_by_text("Error displaying widget")
        assert broken.count() == 0, f"{name}: {broken.first.inner_text()}"
        stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]',
                              has_text="Traceback")
        assert stderr.count() == 0, f"{name}: a traceback: {stderr.first.inner_text()[:3000]}"
        assert not errors, f"{name}: errors in the page: {errors}"
        assert browser_panel.is_visible()
        assert page.viewport_size == {"width": WIDTH, "height": HEIGHT}
        too_wide = page.evaluate(TOO_WIDE, SLACK)
        print(f"{name}: tables scrolling in their own box: {too_wide['tables'] or 'none'}")
        assert not too_wide["bad"], \
            f"{name} at {WIDTH} px with the file browser open:\n" + "\n".join(too_wide["bad"])
    finally:
        page.close()
        server.shut_down_kernel(name)
