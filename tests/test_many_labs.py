"""Many labs at once: four labs with one address plan, different stages and both NAT
backends, each reaching what its stage promises, none reaching another, and each `down`
leaving the others as they were.

Every lab uses the same addresses (10.0.2.15, 172.18.0.10, ...), so cross-talk is shown with
what differs: a request path that only one lab's server may log, and one extra address per
lab that only that lab's own namespaces may reach.
"""
from __future__ import annotations

import concurrent.futures
import os
import time

import pytest

from labkit.kernel import netns
from labkit.lab import service

from harness import labkit_env

pytestmark = pytest.mark.kernel

CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "1", "-m", "3"]
PAGE = "Hello from netns0"
# stage, NAT backend, containers
SETUPS = [("publish", "nftables", None), ("publish", "iptables", None),
          ("hairpin", "nftables", None), ("bridge", None, 3)]


def server_log(lab) -> str:
    path = os.path.join(service.services_dir(lab.name), "netns0-5000.log")
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def fetch(lab, role: str, marker: str) -> None:
    """GET /MARKER on the published port: the server answers 404, and logs the path."""
    result = lab.exec(role, CURL + [f"http://10.0.2.15:5000/{marker}"])
    assert result.returncode == 0 and "404" in result.stdout, (lab.name, result.stderr)


def works(lab, stage: str, marker: str) -> None:
    """The lab does what its stage promises, and the request reached its own server only."""
    assert lab.drift() == [], lab.drift()
    if stage == "bridge":
        assert lab.ping("netns2", "172.18.0.10") and lab.ping("host", "172.18.0.30")
        return
    fetch(lab, "world", marker)
    deadline = time.monotonic() + 5                       # the server logs after it answers
    while f"GET /{marker} " not in server_log(lab):
        assert time.monotonic() < deadline, f"{lab.name}: its server never saw /{marker}"
        time.sleep(0.005)
    assert PAGE in lab.exec("netns1", CURL + ["http://10.0.2.15:5000/"]).stdout
    assert lab.exec("netns0", CURL + ["http://203.0.113.80/"]).stdout == "10.0.2.15\n"


def test_four_labs_at_once_without_cross_talk(lab_factory):
    labs = [lab_factory() for _ in SETUPS]
    for lab, (stage, backend, containers) in zip(labs, SETUPS):
        lab.up(stage, containers, backend=backend)
    for lab, (stage, _, _) in zip(labs, SETUPS):
        works(lab, stage, f"from-{lab.name}")
    for lab in labs:                     # no request of another lab reached this lab's server
        others = [f"/from-{o.name} " for o in labs if o is not lab]
        assert not any(o in server_log(lab) for o in others), server_log(lab)
    # one extra address per lab on its host: only that lab's world may reach it
    for i, lab in enumerate(labs):
        lab.add_address("host", "ens18", f"10.0.2.{100 + i}/24")
    pairs = [(i, j) for i in range(len(labs)) for j in range(len(labs))]
    with concurrent.futures.ThreadPoolExecutor(len(pairs)) as pool:   # the misses wait in parallel
        answered = dict(zip(pairs, pool.map(
            lambda p: labs[p[0]].ping("world", f"10.0.2.{100 + p[1]}", timeout=0.3), pairs)))
    assert answered == {(i, j): i == j for i, j in pairs}, answered
    names = {lab.name: set(lab.journal.namespaces) for lab in labs}
    for lab in labs:                     # every veth's other end is in the same lab
        for ns in lab.inspect().namespaces:
            for itf in ns.interfaces:
                assert itf.peer is None or itf.peer[0] in lab.roles(), (lab.name, ns.role, itf)
    for lab, (stage, backend, containers) in zip(labs, SETUPS):
        lab.up(stage, containers)        # converges away the extra address, backend kept
        assert lab.drift() == [] and (backend is None or lab.inspect().nat_backend == backend)
    # take them down one at a time: the others stay whole and working
    for k, gone in enumerate(labs):
        gone.down()
        assert not any(netns.exists(n) for n in names[gone.name])
        for lab, (stage, _, _) in list(zip(labs, SETUPS))[k + 1:]:
            assert all(netns.exists(n) for n in names[lab.name])
            works(lab, stage, f"after-{gone.name}")


def test_inspecting_a_lab_holds_a_bounded_number_of_descriptors(lab, tmp_path):
    """Reading a big lab back (status, diagrams, drift) opens one netlink socket at a time,
    as `up` does: with more containers than the process may open files (1000 containers
    against the usual limit of 1024), it still works."""
    import subprocess
    import sys
    lab.up("bridge", containers=40)
    code = ("import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))\n"
            f"from labkit import Lab\nlive = Lab({lab.name!r}).inspect()\n"
            "print(len(live.containers))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=labkit_env())
    assert result.stdout.strip() == "40", result.stdout + result.stderr[-600:]
