"""The class on a real JupyterHub (its proxy, its API, the labkit-class service it runs): each
student's check reaches the instructors' view, and only theirs; a student can neither read the
class nor post a record in another's name. Everything listens on 127.0.0.1 only."""
from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from labkit.lab import progress

from harness import labkit_env
from seedtyping import poll

pytestmark = [pytest.mark.root,   # the hub runs as root here (no user's server is spawned)
              pytest.mark.skipif(shutil.which("configurable-http-proxy") is None and not os.environ.get("CI"),
                                 reason="configurable-http-proxy missing: sudo ./install.sh --classroom")]

CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{dir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"ada", "bob", "iris"}}
c.JupyterHub.load_groups = {{"instructors": {{"users": ["iris"]}}}}
c.JupyterHub.services = [
    {{"name": "labkit-class", "url": "http://127.0.0.1:{service_port}", "oauth_no_confirm": True,
      "command": [{python!r}, "-m", "labkit.classroom.service"],
      "environment": {{"LABKIT_CLASS_DB": "{dir}/class.sqlite", "PYTHONPATH": {pythonpath!r}}}}},
    {{"name": "test-admin", "api_token": {admin!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "labkit-class", "services": ["labkit-class"], "scopes": ["read:users:groups"]}},
    {{"name": "admin", "services": ["test-admin"]}},
    {{"name": "user", "scopes": ["self", "access:services!service=labkit-class"]}},
]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """A JupyterHub on 127.0.0.1 with the labkit-class service, in a directory of its own."""

    def __init__(self, directory):
        self.dir, self.admin = str(directory), secrets.token_hex(16)
        ports = {name: _free_port() for name in ("port", "hub_port", "proxy_api", "service_port")}
        self.url = f"http://127.0.0.1:{ports['port']}"
        with open(os.path.join(self.dir, "jupyterhub_config.py"), "w") as f:
            f.write(CONFIG.format(dir=self.dir, python=sys.executable, admin=self.admin,
                                  pythonpath=labkit_env()["PYTHONPATH"], **ports))
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                                        cwd=self.dir, stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.dir, "hub.log"), "a"),
                                        env=labkit_env(), start_new_session=True)
        up = poll(lambda: self.process.poll() is None and self.call("GET", "/hub/api/")[0] == 200
                  and self.call("GET", "/services/labkit-class/api/progress", self.admin)[0] in (403, 200), 60)
        assert up, self.log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()

    def log(self) -> str:
        with open(os.path.join(self.dir, "hub.log")) as f:
            return f.read()[-3000:]

    def call(self, method: str, path: str, token: str | None = None, body=None, timeout: float = 10):
        """(status, text) of a request through the hub's proxy."""
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, OSError) as e:
            return None, str(e)

    def token(self, user: str) -> str:
        """A token of `user` that may reach the service, as a student's server has one."""
        status, text = self.call("POST", f"/hub/api/users/{user}/tokens", self.admin,
                                 {"scopes": ["access:services!service=labkit-class"], "note": "test"})
        assert status == 201, (status, text)
        return json.loads(text)["token"]


@pytest.fixture
def hub(tmp_path):
    made = Hub(tmp_path)
    made.start()
    yield made
    made.stop()


def _record(stage: str, done: bool, unmet=(), fault=None, hints=0, user=None) -> dict:
    data = progress.Record(user or "", "", stage, done, tuple(unmet), hints, fault, time.time()).to_dict()
    if user is None:
        del data["user"]
    return data


def test_each_students_checks_reach_the_instructors_view_and_nobody_elses(hub, monkeypatch):
    ada, bob, iris = (hub.token(u) for u in ("ada", "bob", "iris"))
    post = "/services/labkit-class/api/records"
    # a student's server posts its checks as labkit.lab.progress does, with the hub's token
    monkeypatch.setenv("LABKIT_CLASS_URL", hub.url + "/services/labkit-class/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", ada)
    unmet = ("links/veth1-is-not-a-port-of-br0",)
    assert progress.post(progress.Record("ada", "", "bridge", False, unmet, 1, "port-not-on-bridge", time.time()))
    assert progress.post(progress.Record("ada", "", "bridge", True, (), 1, "port-not-on-bridge", time.time()))
    assert hub.call("POST", post, bob, _record("bridge", False, unmet))[0] == 201
    # a forged user name, no token, a bad record: refused
    assert hub.call("POST", post, bob, _record("bridge", True, user="ada"))[0] == 403
    assert hub.call("POST", post, None, _record("bridge", True))[0] in (302, 403)
    assert hub.call("POST", post, bob, {"stage": "bridge"})[0] == 400
    # students cannot read the class; the instructor can
    for path in ("/services/labkit-class/api/progress", "/services/labkit-class/progress.csv",
                 "/services/labkit-class/"):
        assert hub.call("GET", path, bob)[0] == 403, path
    status, text = hub.call("GET", "/services/labkit-class/api/progress", iris)
    assert status == 200, text
    data = json.loads(text)
    assert data["students"] == ["ada", "bob"]
    assert data["grid"]["ada"]["bridge"]["state"] == "done" and data["grid"]["ada"]["bridge"]["checks"] == 2
    assert data["grid"]["ada"]["bridge"]["faults"] == ["port-not-on-bridge"]
    assert data["grid"]["bob"]["bridge"] == {"state": "working", "checks": 1, "hints": 0, "minutes": None,
                                             "unmet": list(unmet), "faults": []}
    assert data["common"] == [{"item": unmet[0], "students": 1, "of": 2}]
    status, text = hub.call("GET", "/services/labkit-class/progress.csv", iris)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and [r["user"] for r in rows] == ["ada", "ada", "bob"]
    status, text = hub.call("GET", "/services/labkit-class/", iris)
    assert status == 200 and "working: links/veth1-is-not-a-port-of-br0" in text and "done in" in text
    # the records outlive the service and the hub
    hub.stop()
    hub.start()
    assert json.loads(hub.call("GET", "/services/labkit-class/api/progress", iris)[1])["grid"] == data["grid"]


@pytest.mark.kernel
def test_a_check_made_in_a_students_server_is_posted_with_its_token(hub, lab, monkeypatch, tmp_path):
    """lab.check in a server the hub started (its environment: the service's URL and the
    server's token) records the check at home and on the class's page."""
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LABKIT_CLASS_URL", hub.url + "/services/labkit-class/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub.token("ada"))
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    lab.up("veth")
    assert lab.check("veth")
    data = json.loads(hub.call("GET", "/services/labkit-class/api/progress", hub.token("iris"))[1])
    assert data["grid"]["ada"]["veth"]["state"] == "done"
    assert progress.load()[-1].user == "ada"


@pytest.mark.browser
def test_the_instructor_logs_in_and_the_page_shows_the_class(hub, tmp_path):
    """In Debian's chromium: the instructor logs in through the hub (its login page, then the
    service's OAuth) and reads the grid; a student who logs in is refused the page."""
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.fail(f"no {chromium}: ./install.sh installs Debian's chromium", pytrace=False)
    from playwright import sync_api
    assert hub.call("POST", "/services/labkit-class/api/records", hub.token("ada"),
                    _record("outside", False, ("forwarding/the-host-does-not-forward-packets",)))[0] == 201
    assert hub.call("POST", "/services/labkit-class/api/records", hub.token("bob"), _record("veth", True))[0] == 201
    page_url = hub.url + "/services/labkit-class/"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for user, allowed in (("iris", True), ("bob", False)):
                context = browser.new_context()
                page = context.new_page()
                page.goto(page_url)
                page.fill("input[name=username]", user)
                page.fill("input[name=password]", "any")
                page.click("input[type=submit], button[type=submit]")
                page.wait_for_load_state("load")
                if not allowed:
                    assert "403" in page.content() or "Forbidden" in page.content(), page.content()[:500]
                    context.close()
                    continue
                page.wait_for_selector("#grid")
                page.screenshot(path=str(tmp_path / "class.png"), full_page=True)
                rows = page.locator("#grid tr").all_inner_texts()
                assert rows[0].split("\t")[1:] == ["veth", "outside"], rows
                ada = next(r for r in rows if r.startswith("ada"))
                assert "not started" in ada and "working: forwarding/the-host-does-not-forward-packets" in ada
                bob = next(r for r in rows if r.startswith("bob"))
                assert "done in 0.0 min" in bob and "not started" in bob
                assert "1 of 2: forwarding/the-host-does-not-forward-packets" in page.inner_text("#common")
                context.close()
        finally:
            browser.close()
