"""Background servers of a lab, and name resolution that does not stall inside it.

Servers: each `Service` of a stage runs in its namespace (the world's "public server" on
203.0.113.80:80, whose page is the client's address as it saw it, like ifconfig.me; the
seed's `python3 -m http.server --bind 172.18.0.10 5000` in netns0, serving a page that names
its container). `converge` starts what the stage wants and is not listening yet, and stops
what labkit started that the stage no longer wants; a server started by hand on the same
address and port is taken as it is. Waiting for a server polls the namespace's listening
sockets (/proc/net/tcp), never sleeps a fixed time. Servers end when their namespace is
deleted (`netns.delete` ends every process in it).

Names: the files `ip netns exec` binds over /etc are labkit.lab.etcfiles's.

Run as `python3 -m labkit.lab.service whoami ADDRESS PORT` it is the world's server.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from ..kernel import netns, process
from .journal import run_dir
from ..model import plan
from ..errors import KernelError
from ..model.topology import Service, Topology

WAIT_SECONDS = 10.0
_children: dict[int, subprocess.Popen] = {}


# -- listening sockets ---------------------------------------------------------------------------

def listening(ns: str) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket in namespace `ns`, IPv4 and IPv6."""
    found, tables = set(), {}
    with netns.entered(ns):
        for name in ("tcp", "tcp6"):
            with contextlib.suppress(FileNotFoundError):  # tcp6: none while IPv6 is off
                with open(f"/proc/thread-self/net/{name}") as f:
                    tables[name] = f.read().splitlines()[1:]
    for name, rows in tables.items():
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[3] == "0A":
                hexaddr, hexport = cols[1].split(":")
                raw = b"".join(int(hexaddr[i:i + 8], 16).to_bytes(4, sys.byteorder)
                               for i in range(0, len(hexaddr), 8))
                found.add((socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw),
                           int(hexport, 16)))
    return found


def is_listening(ns: str, address: str, port: int) -> bool:
    """True if something in `ns` listens on address:port (or on 0.0.0.0:port)."""
    have = listening(ns)
    return (address, port) in have or ("0.0.0.0", port) in have or \
        (":" in address and ("::", port) in have)


def wait_listening(ns: str, address: str, port: int, proc: subprocess.Popen | None = None,
                   timeout: float = WAIT_SECONDS, log: str | None = None) -> None:
    """Poll until address:port listens in `ns`; KernelError if `proc` ends or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not is_listening(ns, address, port):
        if proc is not None and proc.poll() is not None:
            raise KernelError(f"the server for {address}:{port} in namespace {ns!r} exited "
                              f"(status {proc.returncode}): {_tail(log)}")
        if time.monotonic() > deadline:
            raise KernelError(f"nothing listens on {address}:{port} in namespace {ns!r} after "
                              f"{timeout:.0f} s: {_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _tail(log: str | None) -> str:
    if not log:
        return "no log"
    try:
        with open(log) as f:
            return f.read()[-500:].strip() or "its log is empty"
    except OSError:
        return "no log"


# -- processes -----------------------------------------------------------------------------------

BIG_PAGE = "big.txt"      # every http server's directory has it: BIG_BYTES of text
BIG_BYTES = 1400


def services_dir(lab: str) -> str:
    """Per-lab directory for the servers' pages and logs, beside the journal."""
    return os.path.join(run_dir(), f"{lab or 'default'}.services")


def argv_to_run(service: Service) -> list[str]:
    """The argv actually run: `python3` is this interpreter (the seed's words are shown as is)."""
    argv = list(service.argv)
    if argv and argv[0] in ("python3", "python"):
        argv[0] = sys.executable
    return argv


def _page(service: Service) -> str:
    return (f"<!doctype html><title>{service.namespace}</title>\n"
            f"<h1>Hello from {service.namespace}</h1>\n"
            f"<p>served by <code>{' '.join(service.argv)}</code> on "
            f"{service.address}:{service.port}</p>\n")


def start(lab: str, service: Service, journal) -> int:
    """Start `service` in its namespace and wait until it listens; returns its pid."""
    kernel = plan.namespace_name(lab, service.namespace)
    base = services_dir(lab)
    journal.add_path(base)
    tag = f"{service.namespace}-{service.port}" + ("-6" if ":" in (service.address or "") else "")
    cwd = os.path.join(base, tag)
    os.makedirs(cwd, exist_ok=True)
    with open(os.path.join(cwd, "index.html"), "w") as f:
        f.write(_page(service))
    with open(os.path.join(cwd, BIG_PAGE), "w") as f:  # a response larger than one small packet
        f.write(("x" * 69 + "\n") * (BIG_BYTES // 70))
    log = os.path.join(base, f"{tag}.log")
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as out:
        proc = netns.spawn(kernel, argv_to_run(service), cwd=cwd, env=env,
                           stdout=out, stderr=subprocess.STDOUT)
    _children[proc.pid] = proc
    _record(journal, service, proc.pid)
    try:
        if service.address and service.port:
            wait_listening(kernel, service.address, service.port, proc, log=log)
    except KernelError:
        stop(proc.pid, process.start_time(proc.pid))
        _record(journal, service, None)
        raise
    return proc.pid


def _record(journal, service: Service, pid: int | None) -> None:
    running = [r for r in journal.get("services", []) if not _same(r, service)]
    if pid is not None:
        running.append({"namespace": service.namespace, "argv": list(service.argv),
                        "address": service.address, "port": service.port,
                        "pid": pid, "start": process.start_time(pid)})
    journal.record("services", running)


def _same(record: dict, service: Service) -> bool:
    return (record["namespace"], tuple(record["argv"]), record["address"], record["port"]) == \
        (service.namespace, tuple(service.argv), service.address, service.port)


def stop(pid: int, start_time: str | None, timeout: float = 5.0) -> None:
    """End process `pid` if it is still the one that started at `start_time`."""
    if start_time is None or process.start_time(pid) != start_time:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process.start_time(pid) == start_time and time.monotonic() < deadline:
        child = _children.get(pid)
        if child is not None and child.poll() is not None:
            break
        time.sleep(0.005)
    if process.start_time(pid) == start_time and (pid not in _children or _children[pid].poll() is None):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if pid in _children:
            _children[pid].wait(timeout)
    _children.pop(pid, None)


def converge(topology: Topology, journal) -> None:
    """Run exactly the services of `topology` that labkit starts (see the module docstring)."""
    lab = topology.lab
    wanted = list(topology.services)
    kept = []
    for record in journal.get("services", []):
        alive = process.start_time(record["pid"]) == record["start"]
        home = plan.namespace_name(lab, record["namespace"])
        if alive and any(_same(record, s) for s in wanted) and _runs_in(record["pid"], home):
            kept.append(record)
        else:
            stop(record["pid"], record["start"])
    journal.record("services", kept)
    for service in wanted:
        kernel = plan.namespace_name(lab, service.namespace)
        if service.address and service.port and is_listening(kernel, service.address, service.port):
            continue
        start(lab, service, journal)


def _runs_in(pid: int, kernel: str) -> bool:
    """True if process `pid` is in namespace `kernel` (not in one deleted by hand and remade)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == netns.inode(kernel)
    except OSError:
        return False


def stop_recorded(journal) -> int:
    """End every server the journal says labkit started (still the same process); returns how
    many were running. Needed when a namespace was deleted by hand (`ip netns del` does not
    end its processes), so deleting the lab's namespaces would not reach them."""
    records = journal.get("services", [])
    ended = 0
    for record in records:
        if process.start_time(record["pid"]) == record["start"]:
            stop(record["pid"], record["start"])
            ended += 1
    return ended


def running(lab: str, journal) -> tuple[Service, ...]:
    """The services labkit started in lab `lab` that are alive and listening now."""
    found = []
    for r in journal.get("services", []):
        if process.start_time(r["pid"]) != r["start"]:
            continue
        kernel = plan.namespace_name(lab, r["namespace"])
        if r["address"] and r["port"] and netns.exists(kernel) \
                and not is_listening(kernel, r["address"], r["port"]):
            continue
        found.append(Service(r["namespace"], tuple(r["argv"]), r["address"], r["port"]))
    return tuple(found)


def drift(lab: str, services) -> list[str]:
    """The `services` (a stage's) that nothing listens for now, one line each."""
    lines = []
    for s in services:
        kernel = plan.namespace_name(lab, s.namespace)
        if s.address and s.port and netns.exists(kernel) and not is_listening(kernel, s.address, s.port):
            lines.append(f"{s.namespace}: nothing listens on {s.address}:{s.port} (the stage "
                         f"runs `{' '.join(s.argv)}` there)")
    return lines


# -- the world's server ----------------------------------------------------------------------------

def serve_whoami(address: str, port: int) -> None:
    """Serve, on address:port, a page that is the client's address as seen here, and a newline."""
    import http.server
    import socketserver

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "labkit-whoami/1"

        def do_GET(self):
            body = f"{self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def server_bind(self):  # no reverse lookup of our own name (HTTPServer does one)
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = address, port

    with Server((address, port), Handler) as server:
        server.serve_forever()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "whoami":
        serve_whoami(argv[1], int(argv[2]))
        return 0
    print("usage: python3 -m labkit.lab.service whoami ADDRESS PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
