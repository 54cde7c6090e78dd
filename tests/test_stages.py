"""The first three stages on the real kernel: design.md's reachability matrix, convergence."""
import pytest

from labkit.lab.inspection import differences

pytestmark = pytest.mark.kernel


def reach(lab, pairs):
    """{(from, to_address): reachable?} measured with real pings."""
    return {(src, dst): lab.ping(src, dst, timeout=0.5) for src, dst in pairs}


def test_veth_host_and_netns0_reach_each_other(lab):
    lab.up("veth")
    assert reach(lab, [("host", "172.18.0.10"), ("netns0", "172.18.0.11")]) == {
        ("host", "172.18.0.10"): True, ("netns0", "172.18.0.11"): True}
    assert lab.roles() == ["host", "world", "netns0"]


def test_two_veths_shows_the_routing_conflict(lab):
    lab.up("two-veths")
    got = reach(lab, [("netns0", "172.18.0.21"), ("host", "172.18.0.20"),
                      ("netns1", "172.18.0.21"), ("netns0", "172.18.0.20"),
                      ("host", "172.18.0.10")])
    assert got == {("netns0", "172.18.0.21"): True,   # veth1's address answers on any host link
                   ("host", "172.18.0.20"): False,    # the route via veth0 wins: wrong wire
                   ("netns1", "172.18.0.21"): False,  # replies to netns1 leave by veth0
                   ("netns0", "172.18.0.20"): False,
                   ("host", "172.18.0.10"): True}
    routes = lab.exec("host", ["ip", "route", "show", "172.18.0.0/16"]).stdout
    assert "dev veth0" in routes and "dev veth1" in routes  # two routes for one /16
    chosen = lab.exec("host", ["ip", "route", "get", "172.18.0.20"]).stdout
    assert "dev veth0" in chosen


def test_bridge_joins_both_containers_and_the_host(lab):
    lab.up("bridge")
    pairs = [("netns0", "172.18.0.20"), ("netns1", "172.18.0.10"), ("host", "172.18.0.10"),
             ("host", "172.18.0.20"), ("netns0", "172.18.0.1"), ("netns1", "172.18.0.1")]
    assert all(reach(lab, pairs).values()), reach(lab, pairs)
    assert not lab.ping("netns0", "10.0.2.15", timeout=0.3)  # no default route before `outside`


def test_stages_converge_from_any_state(lab):
    for stage in ("bridge", "bridge", "veth", "two-veths", "bridge", "veth", "veth"):
        lab.up(stage)
        assert differences(lab.plan(stage), lab.inspect()) == [], stage
    assert lab.ping("host", "172.18.0.10")
    assert lab.roles() == ["host", "world", "netns0"]


def test_many_containers_on_one_bridge(lab):
    lab.up("bridge", containers=30)
    assert differences(lab.plan("bridge", 30), lab.inspect()) == []
    assert lab.ping("netns29", "172.18.0.10") and lab.ping("netns0", "172.18.1.50")
    lab.up("bridge", containers=2)
    assert lab.roles() == ["host", "world", "netns0", "netns1"]


def test_hand_edits_are_shown_and_converged_back(lab):
    lab.up("bridge")
    lab.exec("host", ["ip", "link", "del", "veth1"], check=True)
    lab.exec("netns0", ["ip", "addr", "add", "172.18.0.99/16", "dev", "ceth0"], check=True)
    found = differences(lab.plan("bridge"), lab.inspect())
    assert "host: veth1 missing" in found
    assert "netns1: ceth1 missing" in found
    assert any("ceth0 addresses" in line for line in found)
    assert not lab.ping("netns1", "172.18.0.10", timeout=0.3)
    lab.up("bridge")
    assert differences(lab.plan("bridge"), lab.inspect()) == []
    assert lab.ping("netns1", "172.18.0.10")


def test_lab_namespaces_are_prefixed_and_ipv6_is_off(lab):
    lab.up("veth")
    assert lab.ns("netns0") == f"{lab.name}-netns0"
    addrs = lab.exec("netns0", ["ip", "-6", "addr"]).stdout
    assert addrs.strip() == ""
    mac = lab.exec("netns0", ["cat", "/sys/class/net/ceth0/address"]).stdout.strip()
    assert mac == "02:42:ac:12:00:0a"


def test_down_removes_everything_and_is_safe_twice(lab):
    from labkit.lab import journal
    from labkit.kernel import netns
    lab.up("bridge")
    names = journal.Journal(lab.name).namespaces
    assert names and all(netns.exists(n) for n in names)
    lab.down()
    assert not any(netns.exists(n) for n in names)
    assert lab.name not in journal.labs()
    assert lab.down() == []


def test_down_ends_processes_in_the_lab(lab):
    import subprocess
    from labkit.kernel import netns
    lab.up("veth")
    import time
    name = lab.ns("netns0")
    proc = netns.spawn(name, ["sleep", "300"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while proc.pid not in netns.pids(name):  # `ip netns exec` has not entered it yet
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.001)
    lab.down()
    assert proc.wait(timeout=5) != 0


def test_labs_live_side_by_side(lab_factory):
    a, b = lab_factory(), lab_factory()
    a.up("bridge")
    b.up("veth")
    assert a.ping("netns1", "172.18.0.10") and b.ping("host", "172.18.0.10")
    b.down()
    assert a.ping("netns1", "172.18.0.10")


def test_down_of_the_last_lab_leaves_no_journal_directory(lab_factory, tmp_path, monkeypatch):
    import os
    from labkit.lab import journal
    monkeypatch.setenv("LABKIT_RUN_DIR", str(tmp_path / "run"))
    lab = lab_factory()  # made after the change of place: it keeps its journal there
    lab.up("veth")
    assert os.listdir(journal.run_dir()) == [f"{lab.name}.json"]
    lab.down()
    assert not os.path.exists(journal.run_dir())
