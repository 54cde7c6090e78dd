"""labkit-class: the JupyterHub service that collects every student's checks and shows the
class to its instructors, live.

    c.JupyterHub.services = [{"name": "labkit-class", "url": "http://127.0.0.1:10101",
                              "command": [PYTHON, "-m", "labkit.classroom.service"],
                              "environment": {"LABKIT_CLASS_DB": "/var/lib/labkit/class.sqlite"}}]

(examples/jupyterhub/jupyterhub_config.py has it whole, with the roles it needs.) Under the
prefix the hub gives it (/services/labkit-class/):
- `POST api/records`: a student's server posts the record of a check (labkit.lab.progress),
  with the token the hub gave the server; the user is the one the hub says owns the token, and
  a record that names another user is refused (403).
- `GET api/progress` (JSON), `GET progress.csv`, `GET ` (the page, refreshing itself): for
  instructors only, the members of the hub's group "instructors"; anyone else gets 403.
Records are kept in SQLite (LABKIT_CLASS_DB), so they survive a restart.
"""
from __future__ import annotations

import html
import json
import os
import time
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

from ..lab.progress import Record
from . import records

INSTRUCTORS = "instructors"
REFRESH_SECONDS = 5
GROUP_CACHE_SECONDS = 30.0


class _Handler(HubOAuthenticated, web.RequestHandler):
    """A request from someone the hub knows (by token or by the OAuth cookie)."""

    @property
    def store(self) -> records.Store:
        return self.settings["store"]

    async def instructor(self) -> dict:
        """The current user, who must be an instructor; 403 otherwise."""
        user = self.current_user
        if user is None:
            raise web.HTTPError(403)
        if INSTRUCTORS not in await self.settings["groups"].of(user["name"]):
            raise web.HTTPError(403, "for instructors only")
        return user


class Groups:
    """A user's groups, asked of the hub with the service's own token (cached a little)."""

    def __init__(self, api_url: str, token: str):
        self.api_url, self.token = api_url, token
        self._seen: dict[str, tuple[float, set[str]]] = {}

    async def of(self, name: str) -> set[str]:
        seen = self._seen.get(name)
        if seen and time.monotonic() - seen[0] < GROUP_CACHE_SECONDS:
            return seen[1]
        reply = await httpclient.AsyncHTTPClient().fetch(
            url_path_join(self.api_url, "users", name),
            headers={"Authorization": f"token {self.token}"}, raise_error=False)
        groups = set(json.loads(reply.body).get("groups", ())) if reply.code == 200 else set()
        self._seen[name] = (time.monotonic(), groups)
        return groups


class RecordsHandler(_Handler):
    @web.authenticated
    def post(self):
        user = self.current_user["name"]
        try:
            data = json.loads(self.request.body)
            if data.get("user", user) != user:
                raise web.HTTPError(403, "a record is the token owner's own")
            record = Record.from_dict({**data, "user": user})
        except (ValueError, KeyError, TypeError):
            raise web.HTTPError(400, "not a check record") from None
        self.store.add(record)
        self.set_status(201)
        self.finish({"user": user})


class ProgressHandler(_Handler):
    @web.authenticated
    async def get(self):
        await self.instructor()
        self.finish(records.progress(self.store.records()))


class CsvHandler(_Handler):
    @web.authenticated
    async def get(self):
        await self.instructor()
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="labkit-class.csv"')
        self.finish(records.as_csv(self.store.records()))


class PageHandler(_Handler):
    @web.authenticated
    async def get(self):
        await self.instructor()
        self.finish(page(records.progress(self.store.records())))


def page(data: dict) -> str:
    """The instructor's page: students by stages, and what the class is stuck on now."""
    esc = html.escape
    head = "".join(f"<th>{esc(s)}</th>" for s in data["stages"])
    rows = []
    for student in data["students"]:
        cells = []
        for stage in data["stages"]:
            cell = data["grid"][student].get(stage)
            if cell is None:
                cells.append('<td class="none">not started</td>')
                continue
            said = (f"done in {cell['minutes']} min" if cell["state"] == "done"
                    else "working: " + esc("; ".join(cell["unmet"]) or "no item unmet"))
            extra = f"<br><small>{cell['checks']} checks, hints {cell['hints']}"
            extra += (f", fault {esc(', '.join(cell['faults']))}" if cell["faults"] else "") + "</small>"
            cells.append(f'<td class="{cell["state"]}">{said}{extra}</td>')
        rows.append(f"<tr><th>{esc(student)}</th>{''.join(cells)}</tr>")
    common = "".join(f"<li>{c['students']} of {c['of']}: {esc(c['item'])}</li>" for c in data["common"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><title>labkit: the class</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
table{{border-collapse:collapse}} .done{{background:#e3f4e5}} .working{{background:#fff4d6}}
.none{{color:#888}}</style></head><body><h1>The class</h1>
<p><a href="progress.csv">CSV</a> &middot; refreshes every {REFRESH_SECONDS} s</p>
<table id="grid"><tr><th>student</th>{head}</tr>{''.join(rows)}</table>
<h2>Stuck on now</h2><ul id="common">{common or '<li>nothing</li>'}</ul></body></html>"""


def application(store: records.Store, prefix: str, api_url: str, token: str) -> web.Application:
    """The service's web application under `prefix`."""
    return web.Application([
        (prefix, PageHandler), (url_path_join(prefix, "api/records"), RecordsHandler),
        (url_path_join(prefix, "api/progress"), ProgressHandler),
        (url_path_join(prefix, "progress.csv"), CsvHandler),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], store=store, groups=Groups(api_url, token), cookie_secret=os.urandom(32))


def main() -> None:
    """Run as a hub-managed service (the hub sets the JUPYTERHUB_* variables it reads)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/labkit-class/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    store = records.Store(os.environ.get("LABKIT_CLASS_DB", "labkit-class.sqlite"))
    app = application(store, prefix, os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    # LABKIT_CLASS_BIND: where to listen when the URL's host is a name others reach it by (a
    # Kubernetes Service: deploy/kubernetes/values.yaml), else the URL's own address
    app.listen(url.port, os.environ.get("LABKIT_CLASS_BIND") or url.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
