"""Lab services: the world's whoami server, the seed's http.server, and name resolution
that never stalls inside lab namespaces."""
from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from labkit.kernel import netns
from labkit.model import plan
from labkit.lab import etcfiles, service
from labkit.model import stages
from labkit.errors import KernelError
from labkit.model import Service

CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "2", "-m", "4"]


# -- no root -------------------------------------------------------------------------------------

def test_hosts_file_names_every_lab_address():
    text = etcfiles.hosts_text(stages.build("publish", "t1"))
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[1] == f"127.0.1.1\t{socket.gethostname()}"   # sudo in a lab namespace needs it
    for line in ("10.0.2.15\thost", "172.18.0.1\thost", "10.0.2.2\tworld",
                 "203.0.113.80\tpublic-server", "172.18.0.10\tnetns0", "172.18.0.20\tnetns1"):
        assert line in lines
    assert "nameserver 127.0.0.1" in etcfiles.RESOLV_CONF


def test_python3_runs_this_interpreter():
    seed = Service("netns0", ("python3", "-m", "http.server", "--bind", "172.18.0.10", "5000"))
    assert service.argv_to_run(seed) == [sys.executable, "-m", "http.server", "--bind",
                                         "172.18.0.10", "5000"]
    assert service.argv_to_run(Service("world", ("curl", "x"))) == ["curl", "x"]


def test_usage():
    assert service.main([]) == 2


# -- kernel --------------------------------------------------------------------------------------

def _pids(lab) -> dict[str, int]:
    return {r["namespace"]: r["pid"] for r in lab.journal.get("services", [])}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.kernel
def test_services_follow_the_stage(lab):
    lab.up("publish")
    pids = _pids(lab)
    assert set(pids) == {"world", "netns0"}
    assert service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000)
    host_page = lab.exec("host", CURL + [f"http://{plan.PUBLIC_SERVER}/"])
    assert host_page.stdout == "10.0.2.15\n"               # the world sees the host itself
    lab.up("publish")
    assert _pids(lab) == pids                                  # running ones are kept
    lab.up("outside")
    assert set(_pids(lab)) == {"world"} and not _alive(pids["netns0"])
    assert not service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000)
    lab.up("bridge")
    assert _pids(lab) == {} and not _alive(pids["world"])
    lab.up("outside")
    world = _pids(lab)["world"]
    assert [s.namespace for s in service.running(lab.name, lab.journal)] == ["world"]
    lab.down()
    assert not _alive(world)                                   # servers end with the lab


@pytest.mark.kernel
def test_seed_server_starts_at_once_and_names_resolve(lab):
    """The seed's exact command, which stalled ~10 s on the reverse lookup without a resolver."""
    lab.up("bridge")
    seed = Service("netns1", ("python3", "-m", "http.server", "--bind", "172.18.0.20", "5000"),
                   "172.18.0.20", 5000)
    started = time.monotonic()
    service.start(lab.name, seed, lab.journal)
    assert time.monotonic() - started < 3
    lookup = lab.exec("netns0", [sys.executable, "-c",
                                 "import socket, time; t = time.monotonic(); "
                                 "print(socket.getfqdn('172.18.0.20'), "
                                 "socket.getfqdn('203.0.113.7'), time.monotonic() - t)"])
    name, unknown, seconds = lookup.stdout.split()
    assert (name, unknown) == ("netns1", "203.0.113.7") and float(seconds) < 1
    page = lab.exec("netns0", CURL + ["http://172.18.0.20:5000/"])
    assert "Hello from netns1" in page.stdout


@pytest.mark.kernel
def test_resolver_files_are_journaled_and_removed(lab):
    lab.up("veth")
    if netns.netns_dir() != "/run/netns":
        pytest.skip("namespaces are not under /run/netns: `ip netns exec` is not used")
    dirs = [os.path.join(etcfiles.etc_dir(), lab.ns(role)) for role in ("host", "world", "netns0")]
    for d in dirs:
        assert d in lab.journal.data["paths"]
        with open(os.path.join(d, "hosts")) as f:
            assert "172.18.0.10\tnetns0" in f.read()
    resolv = lab.exec("netns0", ["cat", "/etc/resolv.conf"]).stdout
    assert resolv == etcfiles.RESOLV_CONF
    lab.down()
    assert not any(os.path.exists(d) for d in dirs)


@pytest.mark.kernel
def test_a_server_started_by_hand_is_kept(lab):
    lab.up("outside")
    kernel = lab.ns("netns0")
    mine = netns.spawn(kernel, service.argv_to_run(stages.build("publish").services[-1]),
                       stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"),
                       cwd="/tmp/" if os.path.isdir("/tmp") else "/")
    try:
        service.wait_listening(kernel, "172.18.0.10", 5000, mine)
        lab.up("publish")
        assert "netns0" not in _pids(lab) and mine.poll() is None
    finally:
        lab.down()
        mine.wait(5)


@pytest.mark.kernel
def test_a_server_that_cannot_start_is_reported(lab):
    lab.up("bridge")
    bad = Service("netns1", ("python3", "-m", "http.server", "--bind", "172.18.0.99", "5000"),
                  "172.18.0.99", 5000)
    with pytest.raises(KernelError, match="exited"):
        service.start(lab.name, bad, lab.journal)
    assert lab.journal.get("services", []) == []
