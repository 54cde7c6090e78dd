"""A lab of one's own on the real kernel: made from a Blueprint or a TOML file, journaled,
convergent, compared with its plan (drift), undone by `down`; real pings between its
namespaces only."""
import os
import subprocess
import sys

import pytest

from labkit import Blueprint
from labkit.errors import KernelError
from labkit.kernel import netns
from labkit.lab import journal
from labkit.lab.inspection import differences
from unit.test_topology import EXAMPLE, two_networks  # tests/unit: the unit tier

pytestmark = pytest.mark.kernel


def reach(lab, pairs):
    """{(from, to_address): answered?} measured with real pings."""
    return {(src, dst): lab.ping(src, dst, timeout=0.5) for src, dst in pairs}


ACROSS = [("web", "172.19.0.2"), ("db", "172.18.0.2")]           # routed by the host
DIRECT = [("api", "172.18.0.2"), ("api", "172.19.0.2"), ("web", "172.18.0.3"),
          ("db", "172.19.0.3"), ("host", "172.18.0.2"), ("host", "172.19.0.2")]


def links(lab) -> dict[str, str]:
    """Every namespace's links as `ip -o link` prints them (indexes, MACs, state)."""
    return {role: lab.exec(role, ["ip", "-o", "link"], check=True).stdout for role in lab.roles()}


def test_two_networks_up_reach_converge_down(lab):
    want = lab.up(two_networks())
    assert lab.roles() == ["host", "web", "db", "api"] and lab.stage == "two-networks"
    assert all(reach(lab, ACROSS + DIRECT).values()), reach(lab, ACROSS + DIRECT)
    assert lab.drift() == [] and differences(want, lab.inspect()) == []
    assert lab.inspect().namespace("api").kind == "container"
    before, inodes = links(lab), [netns.inode(lab.ns(r)) for r in lab.roles()]
    lab.up(two_networks())                                       # again: nothing changes
    assert links(lab) == before and [netns.inode(lab.ns(r)) for r in lab.roles()] == inodes
    names = journal.Journal(lab.name).namespaces
    assert sorted(names) == sorted(f"{lab.name}-{r}" for r in ("host", "web", "db", "api"))
    lab.down()
    assert not any(netns.exists(n) for n in names) and lab.name not in journal.labs()
    assert not any(os.path.exists(f"/etc/netns/{n}") for n in names)


def test_hand_edits_are_named_and_converged_back(lab):
    lab.up(two_networks())
    lab.exec("host", ["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    lab.exec("api", ["ip", "link", "set", "eth1", "down"], check=True)
    lab.exec("web", ["ip", "route", "del", "default"], check=True)
    drift = lab.drift()
    assert "host: net.ipv4.ip_forward is 0, the stage wants 1" in drift
    assert "api: eth1 up is False, the stage wants True" in drift
    assert "web: route default via 172.18.0.1 missing" in drift
    assert not any(reach(lab, ACROSS).values())
    lab.up(two_networks())
    assert lab.drift() == [] and all(reach(lab, ACROSS).values())


def test_a_forward_drop_between_the_bridges_isolates_the_networks(lab):
    """What notebook 08 shows: the host routes between br0 and br1 until a FORWARD rule stops
    it; api, on both networks, still reaches both (no forwarding on its way)."""
    lab.up(two_networks())
    for a, b in (("br0", "br1"), ("br1", "br0")):
        lab.exec("host", ["iptables", "-I", "FORWARD", "-i", a, "-o", b, "-j", "DROP"], check=True)
    got = reach(lab, ACROSS + DIRECT)
    assert got == {**{p: False for p in ACROSS}, **{p: True for p in DIRECT}}, got
    assert lab.drift() == []                  # a filter rule is not NAT: labkit does not own it


def test_from_a_stage_to_a_topology_and_back(lab):
    lab.up("outside")
    assert lab.ping("netns0", "203.0.113.80")
    lab.up(EXAMPLE)
    assert lab.roles() == ["host", "web", "db", "api"] and lab.drift() == []
    assert "masquerade" not in lab.exec("host", ["nft", "list", "ruleset"]).stdout
    assert lab.ping("web", "172.19.0.2")
    lab.up("bridge")
    assert lab.roles() == ["host", "world", "netns0", "netns1"] and lab.drift() == []
    assert lab.planned().stage == "bridge"


def test_servers_nat_and_no_world(lab):
    """NAT in `host` and servers work without a `world` namespace (the name and hosts file too)."""
    bp = Blueprint("one-app").namespace("host", "host").namespace("app")
    bp.bridge("host", "br0", "10.88.0.1/24")
    bp.veth("host:veth-app", "app:eth0", master="br0", peer_address="10.88.0.2/24")
    bp.route("app", "default", via="10.88.0.1").sysctl("host", "net.ipv4.ip_forward", 1)
    bp.server("app", "10.88.0.2", 80).publish("127.0.0.1", 8080, "10.88.0.2", 80)
    bp.masquerade("10.88.0.0/24", not_out="br0")
    lab.up(bp)
    page = lab.exec("host", ["curl", "-s", "--noproxy", "*", "--max-time", "5",
                             "http://127.0.0.1:8080/"]).stdout
    assert "Hello from app" in page
    assert "app" in lab.exec("host", ["getent", "hosts", "10.88.0.2"]).stdout
    assert lab.drift() == [] and lab.up(bp).services == bp.build(lab.name).services


def test_veth_between_two_containers_without_a_host(lab):
    """Peers are named even when neither end is in a host namespace."""
    bp = Blueprint("pair").namespace("a").namespace("b")
    bp.veth("a:eth0", "b:eth0", address="192.168.7.1/30", peer_address="192.168.7.2/30")
    bp.sysctl("b", "net.ipv4.conf.all.rp_filter", 2)          # a sysctl the stages never set
    lab.up(bp)
    assert lab.ping("a", "192.168.7.2") and lab.drift() == []
    assert lab.inspect().namespace("b").interface("eth0").peer == ("a", "eth0")
    lab.exec("b", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"], check=True)
    assert lab.drift() == ["b: net.ipv4.conf.all.rp_filter is 0, the stage wants 2"]


def test_a_namespace_not_made_by_the_lab_is_refused(lab):
    name = f"{lab.name}-web"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with pytest.raises(KernelError, match=f"{name} exist but lab"):
            lab.up(two_networks())
        assert not netns.exists(f"{lab.name}-host") and lab.name not in journal.labs()
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def labkit_cli(*argv):
    return subprocess.run([sys.executable, "-c", "import sys; from labkit.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True,
                          timeout=120)


def test_cli_up_status_and_down_with_a_topology_file(lab_factory, tmp_path):
    lab = lab_factory()
    up = labkit_cli("up", "--topology", str(EXAMPLE), "--lab", lab.name)
    assert up.returncode == 0, up.stderr
    assert f"lab {lab.name}: topology two-networks is up" in up.stdout
    assert lab.ping("web", "172.19.0.2")
    status = labkit_cli("status", "--lab", lab.name)
    assert "matches topology two-networks: nothing was changed by hand" in status.stdout, status.stdout
    lab.exec("db", ["ip", "addr", "add", "172.19.0.77/16", "dev", "eth0"], check=True)
    status = labkit_cli("status", "--lab", lab.name).stdout
    assert f"`labkit up --topology {EXAMPLE} --lab {lab.name}` brings it back" in status, status
    assert "db: eth0 addresses: 172.19.0.77/16 is not part of the stage" in status
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('"172.19.0.2/16"', '"172.18.0.3/16"'))
    refused = labkit_cli("up", "--topology", str(bad), "--lab", lab.name)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "172.18.0.3 is used twice" in refused.stderr and "Traceback" not in refused.stderr
    assert lab.exec("db", ["ip", "-br", "addr", "show", "eth0"]).stdout.count("172.19.0.77") == 1
    down = labkit_cli("down", "--lab", lab.name)
    assert down.returncode == 0 and not lab.roles() and lab.name not in journal.labs()


def test_a_lab_journaled_by_an_older_labkit_is_read_and_taken_down(lab):
    """A lab brought up before Namespace's fields were renamed: its journal holds each namespace
    as {"name": "web", "role": "container"}; status, drift and down read it as they did."""
    lab.up(two_networks())
    planned, older = lab.planned(), lab.journal.get("topology")
    for ns in older["namespaces"]:
        ns["name"], ns["role"] = ns.pop("role"), ns.pop("kind")
    lab.journal.update({"topology": older})
    assert lab.planned() == planned and lab.drift() == []
    status = labkit_cli("status", "--lab", lab.name)
    assert status.returncode == 0 and "web [container]" in status.stdout, status.stdout + status.stderr
    assert "matches topology two-networks" in status.stdout, status.stdout
    names = lab.journal.namespaces
    down = labkit_cli("down", "--lab", lab.name)
    assert down.returncode == 0, down.stderr
    assert not any(netns.exists(n) for n in names) and lab.name not in journal.labs()


def test_a_bad_file_makes_nothing(lab, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('via = "172.19.0.1"', 'via = "172.20.0.1"'))
    result = labkit_cli("up", "--topology", str(bad), "--lab", lab.name)
    assert result.returncode == 2 and "cannot reach the gateway" in result.stderr, result.stderr
    assert lab.name not in journal.labs() and not [n for n in netns.names() if n.startswith(lab.name)]




def test_a_role_with_a_dash_is_its_own_column_role_in_a_ladder():
    """Validation allows "-" in a namespace of one's own: a ladder's column keeps all of it."""
    from labkit.draw.ladder import role_of
    from labkit.model import validation
    assert validation.check_name("my-router", "namespace") == "my-router"
    assert role_of("my-router:eth0") == "my-router"
    assert role_of("edge-gw-2:eth1") == "edge-gw-2"
    assert role_of("netns0:ceth0") == "netns0" and role_of("host:br0") == "host"
    assert role_of("t1-netns0:ceth0") == "netns0" and role_of("t1-world:wan0") == "world"
