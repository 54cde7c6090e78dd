"""The stages after publish and outside (issue 23) on the real kernel, for both NAT tools:
Docker's filter table (`firewall`), a second network kept apart (`isolated`), and names
resolved by a resolver at 127.0.0.11 in each container (`names`). Real traffic: what must
pass passes, what must be refused is refused; names resolved with getent as a container does."""
from __future__ import annotations

import pytest

from labkit.kernel import netns, process
from labkit.lab import reach
from labkit.model import plan, stages
from labkit.nat import rules_in

pytestmark = pytest.mark.kernel

PUBLISHED = reach.PUBLISHED
DIRECT = f"http://{plan.container_address(0)}:5000/"


def _reach(lab, pairs):
    """{(source, target): answered} for each pair, each probe sent once."""
    return {(s, t): reach.probe(lab, s, t) for s, t in pairs}


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_firewall_opens_the_published_port_and_refuses_the_direct_route(lab, backend):
    lab.up("firewall", backend=backend)
    got = _reach(lab, [("world", PUBLISHED), ("host", PUBLISHED), ("netns0", plan.PUBLIC_SERVER),
                       ("netns0", plan.container_address(1)), ("world", plan.container_address(0)),
                       ("world", DIRECT)])
    assert got == {("world", PUBLISHED): True, ("host", PUBLISHED): True,
                   ("netns0", plan.PUBLIC_SERVER): True, ("netns0", plan.container_address(1)): True,
                   ("world", plan.container_address(0)): False, ("world", DIRECT): False}
    assert lab.exec("world", ["ip", "route", "get", plan.container_address(0)]).stdout.split()[2] \
        == plan.HOST_ADDRESS                      # the world does route to the container
    forward = [c for c in rules_in(lab.ns("host")) if c.hook == "forward"]
    assert forward and forward[0].position == 0 and "docker-user" in forward[0].text.lower()
    if backend == "nftables":                     # one table: its hooks, priorities and policy shown
        listing = lab.exec("host", ["nft", "list", "table", "ip", "labkit"], check=True).stdout
        assert "type filter hook forward priority filter; policy drop;" in listing, listing
        assert "type nat hook prerouting priority dstnat;" in listing
        assert lab.exec("host", ["iptables-save", "-t", "filter"]).stdout.count("-A ") == 0
    else:
        saved = lab.exec("host", ["iptables-save", "-t", "filter"], check=True).stdout
        assert ":FORWARD DROP" in saved and "-A FORWARD -j DOCKER-USER" in saved
    assert lab.drift() == [] and lab.check("firewall").ok


def test_going_back_to_publish_takes_the_filter_table_away(lab):
    lab.up("firewall", backend="iptables")
    lab.up("publish")
    saved = lab.exec("host", ["iptables-save", "-t", "filter"]).stdout
    assert ":FORWARD ACCEPT" in saved and "DOCKER" not in saved, saved
    assert lab.exec("world", ["ip", "route", "show", plan.BRIDGE_NET]).stdout == ""
    assert lab.drift() == []


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_isolated_networks_reach_the_world_but_not_each_other(lab, backend):
    lab.up("firewall", backend=backend)          # from the stage before: the isolation jump
    lab.up("isolated")                           # must go in second, not after the accepts
    two = stages.SECOND_ADDRESS
    got = _reach(lab, [("netns0", plan.PUBLIC_SERVER), ("netns2", plan.PUBLIC_SERVER),
                       ("netns0", plan.container_address(1)), ("netns0", two),
                       ("netns2", plan.container_address(0)), ("netns1", two)])
    assert got == {("netns0", plan.PUBLIC_SERVER): True, ("netns2", plan.PUBLIC_SERVER): True,
                   ("netns0", plan.container_address(1)): True, ("netns0", two): False,
                   ("netns2", plan.container_address(0)): False, ("netns1", two): False}
    ok, seen = reach.http(lab, "netns2", reach.WHOAMI)
    assert ok and seen.strip() == plan.HOST_ADDRESS            # br1's network is masqueraded too
    assert lab.drift() == [] and lab.check("isolated").ok
    lab.up("firewall")                                          # netns2 and br1 go, and their rules
    assert "netns2" not in lab.roles() and lab.drift() == []


def _getent(lab, role, name):
    result = lab.exec(role, ["getent", "hosts", name], timeout=15)
    return (result.stdout.split() or [None])[0]


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_names_resolve_in_each_container_through_127_0_0_11(lab, backend):
    lab.up("names", backend=backend)
    assert _getent(lab, "netns0", "netns1") == plan.container_address(1)
    assert _getent(lab, "netns1", "netns0") == plan.container_address(0)
    assert _getent(lab, "netns0", stages.PUBLIC_NAME) == plan.PUBLIC_SERVER   # forwarded to the world
    assert _getent(lab, "host", stages.PUBLIC_NAME) == plan.PUBLIC_SERVER     # the host's LAN resolver
    resolv = lab.exec("netns0", ["cat", "/etc/resolv.conf"]).stdout
    assert f"nameserver {stages.RESOLVER}" in resolv
    hosts = lab.exec("netns0", ["cat", "/etc/hosts"]).stdout
    assert "netns1" not in hosts                 # found by DNS, not by the hosts file
    dnat = [c for c in rules_in(lab.ns("netns0")) if c.action == "DNAT"]
    assert len(dnat) == 2 and all(c.packets for c in dnat if "udp" in c.text), dnat
    assert lab.check("names").ok and lab.drift() == []
    pids = [r["pid"] for r in lab.journal.get("services")]
    lab.up("outside")                            # resolvers stop, rules and files go back
    assert not [p for p in pids if process.alive(p) and "dnsmasq" in open(f"/proc/{p}/comm").read()]
    assert lab.exec("netns0", ["iptables-save", "-t", "nat"]).stdout.count("-A ") == 0
    assert "127.0.0.11" not in lab.exec("netns0", ["cat", "/etc/resolv.conf"]).stdout
    assert _getent(lab, "netns0", stages.PUBLIC_NAME) is None
    assert lab.drift() == []


def test_down_ends_the_resolvers_and_the_world_dns_server(lab):
    lab.up("names")
    pids = [r["pid"] for r in lab.journal.get("services")]
    starts = {p: process.start_time(p) for p in pids}
    assert len(pids) == 4                       # the world's, netns0's, netns1's, and the whoami
    kernels = [lab.ns(r) for r in ("host", "world", "netns0", "netns1")]
    lab.down()
    assert not [p for p in pids if process.start_time(p) == starts[p]]
    assert not [k for k in kernels if netns.exists(k)]
