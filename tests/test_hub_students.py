"""Real students through a real JupyterHub started from the shipped config
(examples/jupyterhub/jupyterhub_config.py): two Unix users made with useradd log in with their
passwords (PAM), the hub starts a Jupyter server as each of them, and through the hub's proxy
(the Jupyter server's REST API, then the kernel's websocket) each runs the your-turn cells of
notebook 01 on the labkit kernel, in a world of the student's own. The two labs are apart, and
each check reaches the instructors' page. Everything listens on 127.0.0.1; the users, their
processes and the hub are gone after, even when the test fails."""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from labkit.cli.rootless import kernel_spec
from labkit.kernel import userns

from harness import REPO, labkit_env, new_users
from seedtyping import poll
from test_classroom import Hub, _free_port
from test_rootless import User, _python_for

pytestmark = [pytest.mark.users, pytest.mark.root,
              pytest.mark.skipif(shutil.which("configurable-http-proxy") is None and not os.environ.get("CI"),
                                 reason="configurable-http-proxy missing: sudo ./install.sh --classroom")]

SHIPPED = os.path.join(REPO, "examples", "jupyterhub", "jupyterhub_config.py")
NOTEBOOK = os.path.join(REPO, "notebooks", "01-namespaces-and-veth.ipynb")

# The shipped config, loaded whole, then only what this machine and a test need: ports, files
# in the test's directory, these students, and an interpreter every user may run.
CONFIG = """
c = get_config()  # noqa
load_subconfig({shipped!r})  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{dir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.Authenticator.allowed_users = {students!r}
c.JupyterHub.services[0]["url"] = "http://127.0.0.1:{service_port}"
c.JupyterHub.services[0]["command"][0] = {hub_python!r}
c.JupyterHub.services[0]["environment"].update(PYTHONPATH={pythonpath!r}, LABKIT_CLASS_DB="{dir}/class.sqlite")
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {admin!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["test-admin"]}})
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.environment.update({{"PYTHONPATH": {student_path!r}, "JUPYTER_PATH": {jupyter_path!r},
                               "JUPYTERLAB_DIR": {prefix!r} + "/share/jupyter/lab",
                               "JUPYTER_CONFIG_PATH": {prefix!r} + "/etc/jupyter",
                               "LABKIT_CLASS_URL": "http://127.0.0.1:{port}/services/labkit-class/"}})
c.Spawner.http_timeout = 60
"""


class ShippedHub(Hub):
    """The shipped hub config on free ports, for `students` running `python`."""

    def __init__(self, directory, students, python, student_path, jupyter_path, extra: str = ""):
        self.dir, self.admin = str(directory), secrets.token_hex(16)
        ports = {name: _free_port() for name in ("port", "hub_port", "proxy_api", "service_port")}
        self.url = f"http://127.0.0.1:{ports['port']}"
        with open(os.path.join(self.dir, "jupyterhub_config.py"), "w") as f:
            f.write(CONFIG.format(shipped=SHIPPED, dir=self.dir, students=set(students), admin=self.admin,
                                  pythonpath=labkit_env()["PYTHONPATH"], python=python, hub_python=sys.executable,
                                  student_path=student_path, jupyter_path=jupyter_path, **ports,
                                  prefix=sys.prefix) + extra)
        self.process = None

    def login(self, user: str, password: str, timeout: float = 60) -> urllib.request.OpenerDirector:
        """Log `user` in through the hub's login form (PAM): a browser's cookies, following
        redirects (the hub then starts the user's server)."""
        cookies = urllib.request.HTTPCookieProcessor()
        browser = urllib.request.build_opener(cookies)
        with browser.open(self.url + "/hub/login", timeout=timeout) as reply:
            assert reply.status == 200
        xsrf = next(c.value for c in cookies.cookiejar if c.name == "_xsrf")
        form = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf}).encode()
        try:
            browser.open(urllib.request.Request(self.url + "/hub/login?next=", data=form), timeout=timeout).close()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"login of {user}: {e.code} {e.read()[:300]!r}\n{self.log()}") from None
        return cookies

    def token_for(self, user: str, *scopes: str, timeout: float = 10) -> str:
        """A token of `user` (by default: to reach the user's own server, as the user's
        browser may)."""
        status, text = self.call("POST", f"/hub/api/users/{user}/tokens", self.admin,
                                 {"scopes": list(scopes) or [f"access:servers!user={user}"], "note": "test"},
                                 timeout=timeout)
        assert status == 201, (status, text)
        return json.loads(text)["token"]

    def server_ready(self, user: str, timeout: float = 10) -> bool:
        status, text = self.call("GET", f"/hub/api/users/{user}", self.admin, timeout=timeout)
        return status == 200 and bool(json.loads(text).get("servers", {}).get("", {}).get("ready"))


class Kernel:
    """A kernel of a student's server, through the hub's proxy: created with the REST API,
    driven by execute_request messages on its websocket."""

    def __init__(self, hub: ShippedHub, user: str, token: str, timeout: float = 120):
        import websocket  # websocket-client, a dependency of jupyter_server
        self.hub, self.user, self.token = hub, user, token
        status, text = hub.call("POST", f"/user/{user}/api/sessions", token, timeout=timeout, body=
                                {"path": "01.ipynb", "type": "notebook", "name": "01.ipynb",
                                 "kernel": {"name": "labkit"}})
        assert status == 201, (status, text)
        self.id = json.loads(text)["kernel"]["id"]
        url = hub.url.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"], timeout=timeout)

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute `code`; its output (streams, results, errors) as text."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.user, "session": "test", "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out, idle, replied = [], False, False
        self.first_output = None       # when the cell's first output came (time.monotonic)
        self.ws.settimeout(timeout)
        while not (idle and replied):
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if self.first_output is None and kind in ("stream", "execute_result", "display_data", "error"):
                self.first_output = time.monotonic()
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                out.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        return "".join(out)

    def close(self) -> None:
        self.ws.close()


def _your_turn_cells() -> list[str]:
    """Notebook 01's first cell (the setup), then its your-turn cells: from the practice cell
    to the check after the student's last command (the instructor's solutions typed in)."""
    with open(NOTEBOOK) as f:
        cells = ["".join(c["source"]) for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    start = next(i for i, c in enumerate(cells) if "lab.practice(" in c)
    checks = [i for i, c in enumerate(cells) if c.strip() == 'lab.check("veth")']
    return [cells[0], *cells[start:checks[1] + 1]]


@pytest.fixture
def students():
    """Two new Unix users with passwords, removed with their homes and every process after
    the test, however it ends."""
    with new_users(2, "lkh") as passwords:
        yield passwords


def _serving(uid: int) -> list[int]:
    """Pids of the Jupyter servers running as `uid`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if os.stat(f"/proc/{entry}").st_uid == uid and b"jupyterhub.singleuser" in argv:
                found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


@pytest.fixture
def hub(students, public_dir, tmp_path):
    """The shipped hub for `students`, with the labkit kernel installed for everyone (in a
    directory of the test's, on JUPYTER_PATH); stopped after (the students' servers end with
    the students' processes)."""
    python, env = _python_for(sorted(students)[0])
    kernels = os.path.join(public_dir, "jupyter", "kernels")
    os.makedirs(os.path.join(kernels, "labkit"))
    with open(os.path.join(kernels, "labkit", "kernel.json"), "w") as f:
        json.dump(kernel_spec(python), f)
    for directory in (os.path.join(public_dir, "jupyter"), kernels, os.path.join(kernels, "labkit")):
        os.chmod(directory, 0o755)
    # the kernel's directory, then this environment's (JupyterLab's pages, its extensions and
    # their configuration, above: the students' interpreter may be the system's, given this
    # environment's packages, where this one lives in root's private home)
    jupyter_path = os.pathsep.join([os.path.join(public_dir, "jupyter"),
                                    os.path.join(sys.prefix, "share", "jupyter")])
    made = ShippedHub(tmp_path, sorted(students), python, env.get("PYTHONPATH", REPO), jupyter_path)
    made.students, made.python, made.python_env = students, python, env
    try:
        made.start()
        yield made
    finally:
        made.stop()


def _logged_in(hub: ShippedHub, names) -> None:
    """Log each of `names` in with its password; wait until the hub has started each one's
    server, running as the student."""
    for name in names:
        hub.login(name, hub.students[name])
    for name in names:
        assert poll(lambda: hub.server_ready(name), 90), f"{name}'s server\n{hub.log()}"
        assert _serving(pwd.getpwnam(name).pw_uid), f"no Jupyter server runs as {name}"


def test_two_students_log_in_run_notebook_01_in_worlds_of_their_own_and_are_apart(hub):
    names = sorted(hub.students)
    python, env = hub.python, hub.python_env
    kernels = {}
    try:
        _logged_in(hub, names)
        with pytest.raises(AssertionError, match=": 403"):    # a wrong password: PAM says no
            hub.login(names[0], "not-" + hub.students[names[0]])
        tokens = {name: hub.token_for(name) for name in names}
        for name in names:
            kernels[name] = Kernel(hub, name, tokens[name])
        cells = _your_turn_cells()
        said = {name: [] for name in names}
        for cell in cells:                 # the two students, cell by cell, side by side
            for name in names:
                said[name].append(kernels[name].run(cell))
        for name in names:
            text = "\n".join(said[name])
            assert "Traceback" not in text and "Error" not in text, text[-3000:]
            assert "labkit: checks" not in text, text   # recorded at home and posted to the class
            first, last = (said[name][i] for i, c in enumerate(cells) if c.strip() == 'lab.check("veth")')
            assert "stage veth: not done yet" in first and "stage veth: done" in last, (first, last)
            assert "1 packets transmitted, 1 received" in said[name][-2], said[name][-2]
        # each student's world: root there (uid 0) in a user namespace mapped to the student
        look = ("import os\nfrom labkit.kernel import world\nw = world.recorded()\n"
                "print(os.getuid(), w.uid, w.pid, os.stat('/run/netns/netns0').st_ino)")
        seen = {}
        for name in names:
            inside, uid, keeper, netns0 = kernels[name].run(look).split()
            assert inside == "0" and int(uid) == pwd.getpwnam(name).pw_uid
            assert os.stat(f"/proc/{keeper}").st_uid == int(uid)
            seen[name] = int(keeper), int(netns0)
        (a, b), (ka, kb) = names, (kernels[n] for n in names)
        assert seen[a][1] != seen[b][1], "the two netns0 are one namespace"
        assert userns.inode(seen[a][0]) != userns.inode(seen[b][0])
        # a's lab changes; b's does not see it, and cannot reach into a's world
        assert ka.run("%%lab netns0\nip addr add 172.18.0.99/16 dev ceth0\nip -br addr show ceth0").count("172.18.0.99")
        assert "172.18.0.99" not in kb.run("%%lab netns0\nip -br addr show ceth0")
        assert "0 received" in kb.run("%%lab host\nping -c 1 -W 1 172.18.0.99")
        assert "1 received" in ka.run("%%lab host\nping -c 1 -W 1 172.18.0.99")
        refused = kb.run(f"try:\n    open('/proc/{seen[a][0]}/ns/net')\nexcept PermissionError as e:\n"
                         f"    print('refused', e.errno)\n")
        assert "refused" in refused, refused
        # and `labkit check` in the student's terminal (in the same world) posts too
        terminal = User(a, python, env)
        said = terminal.labkit("check", "veth", env={
            "LABKIT_CLASS_URL": hub.url + "/services/labkit-class/",
            "JUPYTERHUB_API_TOKEN": hub.token_for(a, "access:services!service=labkit-class")})
        assert said.returncode == 0 and "labkit: checks" not in said.stderr, (said.stdout, said.stderr)
        # every check reached the instructors' page, in each student's own name
        # (a kernel posts in the background: the page has them within seconds)
        teacher = hub.token_for("teacher", "access:services!service=labkit-class")

        def grid():
            status, text = hub.call("GET", "/services/labkit-class/api/progress", teacher)
            assert status == 200, text
            return json.loads(text)["grid"]
        counts = lambda g: tuple(g.get(n, {}).get("veth", {}).get("checks") for n in (a, b))  # noqa: E731
        assert poll(lambda: counts(grid()) == (3, 2), 30), grid()
        assert all(grid()[name]["veth"]["state"] == "done" for name in names), grid()
        for name in names:
            kernels.pop(name).run("lab.down()")
        for name in names:
            assert hub.call("DELETE", f"/hub/api/users/{name}/server", hub.admin)[0] in (202, 204)
        for name in names:
            uid = pwd.getpwnam(name).pw_uid
            assert poll(lambda: not _serving(uid), 30), f"{name}'s server outlived its stop"
    finally:
        for k in kernels.values():
            k.close()


@pytest.mark.browser
def test_a_student_logs_in_opens_03_in_jupyterlab_and_sees_the_task(hub, tmp_path):
    """In Debian's chromium: a student logs in on the hub's page, the hub starts the student's
    JupyterLab, the student opens 03-bridge (the labkit kernel by default), runs the first
    cell and the practice cell, and reads the task: built in the student's world."""
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.fail(f"no {chromium}: ./install.sh installs Debian's chromium", pytrace=False)
    from playwright import sync_api
    name = sorted(hub.students)[0]
    entry = pwd.getpwnam(name)
    target = os.path.join(entry.pw_dir, "03-bridge.ipynb")
    with open(os.path.join(REPO, "notebooks", "03-bridge.ipynb")) as f:
        nb = json.load(f)
    cells = nb["cells"]
    for c in cells:                  # as a student gets it: no stored output to mistake for one
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    with open(target, "w") as f:
        json.dump(nb, f)
    os.chown(target, entry.pw_uid, entry.pw_gid)
    practice = next(i for i, c in enumerate(cells) if 'lab.practice("bridge"' in "".join(c["source"]))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            try:
                page.goto(hub.url + "/hub/login")
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", hub.students[name])
                page.click("input[type=submit], button[type=submit]")
                page.wait_for_url(f"**/user/{name}/lab**", timeout=90_000)   # the hub spawned it
                page.goto(hub.url + f"/user/{name}/lab/tree/03-bridge.ipynb?reset")
                cell = page.locator(".jp-Notebook .jp-Cell")
                sync_api.expect(cell).to_have_count(len(cells), timeout=60_000)
                status = page.locator("#jp-main-statusbar")
                sync_api.expect(status).to_contain_text("Python (labkit lab) | Idle", timeout=60_000)
                cell.nth(practice + 1).locator(".jp-InputPrompt").first.click()
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator('.lm-Menu li[data-command="notebook:run-all-above"]').click()
                output = cell.nth(practice).locator(".jp-OutputArea-output")
                sync_api.expect(output.first).to_contain_text("Your turn, as a challenge: build stage 'bridge'",
                                                              timeout=60_000)
                sync_api.expect(status).to_contain_text("Python (labkit lab) | Idle", timeout=60_000)
                output.first.scroll_into_view_if_needed()
                page.screenshot(path=str(tmp_path / "student-03.png"))
                said = output.all_inner_texts()
                text = "\n".join(said)
                assert "Check will test" in text and "Traceback" not in text, text
                assert "ip link add br0 type bridge" not in text, text        # a challenge: no command
                assert output.locator("img").count() >= 1                       # the goal, drawn
                first = "\n".join(cell.nth(1).locator(".jp-OutputArea-output").all_inner_texts())
                assert "labkit is ready" in first, first
                world = User(name, hub.python, hub.python_env).world()   # the lab, in the student's world
                assert world is not None and os.stat(f"/proc/{world.pid}").st_uid == entry.pw_uid
                assert {"host", "netns0", "netns1"} <= set(os.listdir(f"/proc/{world.pid}/root/run/netns"))
            except Exception:
                page.screenshot(path=str(tmp_path / "failed.png"))   # what the student saw
                raise
        finally:
            browser.close()
