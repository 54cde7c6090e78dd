"""Hand edits: what a student types in a terminal while a lab is up (`ip netns exec ...`).

`labkit status` names each change (its "differs from stage ..." section), and `labkit up
STAGE` brings the lab back, traffic included, or says precisely what stands in the way.
test_stages.py covers the same through the Python API on the bridge stage; here it is the
command line, on the publish stage with both NAT backends.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labkit.kernel import process
from labkit.lab import journal
from labkit.kernel import netns
from labkit.model import plan
from labkit.lab import service
from labkit.errors import KernelError

from harness import labkit_env
from seedtyping import poll

pytestmark = pytest.mark.kernel

CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "1", "-m", "3"]
PAGE = "Hello from netns0"


def labkit_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=labkit_env())


def status(lab) -> str:
    result = labkit_cli("status", "--lab", lab.name)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout


def terminal(lab, role: str, *argv: str) -> None:
    """What the student types: `sudo ip netns exec LAB-ROLE ARGV...`."""
    subprocess.run(["ip", "netns", "exec", lab.ns(role), *argv], check=True, capture_output=True)


def page(lab, role: str = "world") -> bool:
    return PAGE in lab.exec(role, CURL + ["http://10.0.2.15:5000/"]).stdout


def up(lab, stage: str) -> None:
    result = labkit_cli("up", stage, "--lab", lab.name)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_status_names_each_edit_and_up_brings_the_lab_back(lab, backend):
    lab.up("publish", backend=backend)
    before = status(lab)
    assert "matches stage publish" in before
    terminal(lab, "host", "ip", "link", "del", "veth0")
    terminal(lab, "netns1", "ip", "addr", "add", "172.18.0.99/16", "dev", "ceth1")
    if backend == "nftables":
        terminal(lab, "host", "nft", "flush", "ruleset")
    else:
        terminal(lab, "host", "iptables", "-t", "nat", "-F")
    assert not page(lab)
    after = status(lab)
    assert after != before
    drift = after.split("differs from stage publish", 1)[1]
    for line in ("host: veth0 missing", "netns0: ceth0 missing",
                 "netns1: ceth1 addresses: 172.18.0.99/16 is not part of the stage",
                 f"host: NAT rule missing ({backend}): publish 10.0.2.15:5000/tcp on 172.18.0.10:5000 "
                 f"(from outside)",
                 f"host: NAT rule missing ({backend}): masquerade 172.18.0.0/16 unless leaving by br0"):
        assert line in drift, after
    assert f"labkit up publish --lab {lab.name}` brings it back" in after
    up(lab, "publish")
    assert "matches stage publish" in status(lab)
    assert page(lab) and lab.ping("netns1", "172.18.0.10")
    assert lab.drift() == []


def test_other_edits_routes_state_sysctls_servers_and_foreign_rules(lab):
    lab.up("publish")
    seed = next(r["pid"] for r in lab.journal.get("services") if r["namespace"] == "netns0")
    terminal(lab, "host", "sysctl", "-qw", "net.ipv4.ip_forward=0")
    terminal(lab, "netns1", "ip", "link", "set", "ceth1", "down")
    terminal(lab, "netns0", "ip", "route", "del", "default")
    terminal(lab, "host", "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.9.0.0/16",
             "-j", "MASQUERADE")
    os.kill(seed, 15)
    assert poll(lambda: not service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000), 5)
    text = status(lab)
    for line in ("host: net.ipv4.ip_forward is 0, the stage wants 1",
                 "netns1: ceth1 up is False, the stage wants True",
                 "netns0: route default via 172.18.0.1 missing",
                 "netns1: route default via 172.18.0.1 missing",   # the kernel drops it with ceth1
                 "netns0: nothing listens on 172.18.0.10:5000",
                 "host: NAT rule not part of the stage (iptables): "
                 "iptables -t nat -A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE"):
        assert line in text, text
    as_json = labkit_cli("status", "--lab", lab.name, "--json")
    assert json.loads(as_json.stdout)["drift"] == lab.drift() and len(lab.drift()) == 6
    up(lab, "publish")
    assert page(lab) and lab.ping("netns1", "172.18.0.10")
    # the student's own rule is not labkit's: it stays, and status keeps naming it
    assert lab.drift() == ["host: NAT rule not part of the stage (iptables): "
                           "iptables -t nat -A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE"]


def test_a_namespace_deleted_by_hand_and_its_server(lab):
    """`ip netns del` unmounts a namespace but leaves its processes running in it."""
    lab.up("publish")
    seed = next(r for r in lab.journal.get("services") if r["namespace"] == "netns0")
    subprocess.run(["ip", "netns", "del", lab.ns("netns0")], check=True)
    assert _alive(seed["pid"])                      # the server lives on, out of reach
    assert "netns0: namespace missing" in status(lab)
    up(lab, "publish")
    assert page(lab)
    assert not _alive(seed["pid"])                  # the stray server was ended, not kept
    subprocess.run(["ip", "netns", "del", lab.ns("netns0")], check=True)
    now = next(r for r in lab.journal.get("services") if r["namespace"] == "netns0")
    lab.down()                                      # ends it too, though its namespace is gone
    assert not _alive(now["pid"])


def test_a_namespace_labkit_did_not_make_is_named_not_taken(lab):
    kernel = plan.namespace_name(lab.name, "netns1")
    subprocess.run(["ip", "netns", "add", kernel], check=True)
    try:
        with pytest.raises(KernelError, match=f"{kernel} exist but lab '{lab.name}' did not create"):
            lab.up("bridge")
        assert lab.name not in journal.labs()
        result = labkit_cli("up", "bridge", "--lab", lab.name)
        assert result.returncode == 2 and f"sudo ip netns delete {kernel}" in result.stderr
        assert "Traceback" not in result.stderr
        lab.up("veth")                              # a stage without netns1 does not need it
        lab.down()
        assert netns.exists(kernel)                 # and labkit never deletes what is not its own
    finally:
        subprocess.run(["ip", "netns", "del", kernel], check=True)
    lab.up("bridge")
    assert lab.ping("netns1", "172.18.0.10")


def _alive(pid: int) -> bool:
    return process.start_time(pid) is not None
