"""NAT on the real kernel, both backends: outside, publish, hairpin and localhost publishing,
the route_localnet hole closed, exact removal, backend switching, and bad input.

Traffic goes only between the lab's own namespaces (curl with --noproxy '*' and short
timeouts); nothing waits by sleeping.
"""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from labkit.nat import api as nat
from labkit.kernel import netns
from labkit.model import plan
from labkit.lab import service
from labkit.capture.frames import syn_frame
from labkit.errors import BadAddress, BadValue, MissingTool, UnknownName
from labkit.model import PortMapping, Service

from harness import path_without, without_capabilities

pytestmark = pytest.mark.kernel

CURL = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "2", "-m", "4"]
PAGE = "Hello from netns0"
PUBLISHED = "http://10.0.2.15:5000/"


@pytest.fixture(params=nat.BACKENDS)
def backend(request):
    return request.param


def get(lab, role: str, url: str) -> str:
    result = lab.exec(role, CURL + [url])
    assert result.returncode == 0, f"{role} -> {url}: {result.stderr}"
    return result.stdout


def fails(lab, role: str, url: str) -> bool:
    return lab.exec(role, CURL + ["--connect-timeout", "1", url]).returncode != 0


def host_tables(lab) -> list[str]:
    return lab.exec("host", ["nft", "list", "tables"]).stdout.split()[2::3]


def iptables_rules(lab) -> list[str]:
    return [line for line in lab.exec("host", ["iptables-save"]).stdout.splitlines()
            if line.startswith("-A")]


def test_outside(lab, backend):
    lab.up("outside", backend=backend)
    for role in ("netns0", "netns1"):
        assert lab.ping(role, plan.PUBLIC_SERVER)
        assert get(lab, role, f"http://{plan.PUBLIC_SERVER}/") == "10.0.2.15\n"  # masqueraded
    assert lab.ping("netns0", "172.18.0.20") and lab.ping("netns1", "172.18.0.10")
    assert get(lab, "host", f"http://{plan.PUBLIC_SERVER}/") == "10.0.2.15\n"
    assert nat.read(lab.name, journal=lab.journal) == (backend, lab.plan("outside").nat)
    lines = "\n".join(nat.status_lines(lab.name, journal=lab.journal))
    assert f"NAT rules ({backend}, this lab's backend)" in lines
    assert ("! -o br0 -j MASQUERADE" if backend == "iptables" else 'oifname != "br0" counter masquerade') in lines


def test_publish(lab, backend):
    lab.up("publish", backend=backend)
    for role in ("world", "host", "netns1"):
        assert PAGE in get(lab, role, PUBLISHED)
    assert get(lab, "netns0", f"http://{plan.PUBLIC_SERVER}/") == "10.0.2.15\n"
    assert fails(lab, "world", "http://10.0.2.15:5001/")
    assert set(nat.read(lab.name, journal=lab.journal)[1]) == set(lab.plan("publish").nat)


# -- the route_localnet hole (moby#41872) --------------------------------------------------------

def syns_reaching_netns0(lab, probes: dict[int, str], control: int, timeout: float = 3.0) -> set[int]:
    """Send from `world`, straight to the host's ens18 MAC, a SYN for port 5000 to each
    {source port: destination}, the control last; return the source ports of the SYNs that
    netns0's ceth0 saw once the control arrived (frames on one path keep their order)."""
    with netns.entered(lab.ns("netns0")):
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        rx.bind(("ceth0", 0))
    with netns.entered(lab.ns("world")):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind((plan.WORLD_UPLINK, 0))
    seen: set[int] = set()
    with rx, tx:
        for sport, dst in sorted(probes.items(), key=lambda kv: kv[0] == control):
            tx.send(syn_frame(plan.mac_for(plan.WORLD_ADDRESS), plan.mac_for(plan.HOST_ADDRESS),
                              plan.WORLD_ADDRESS, dst, sport, 5000))
        deadline = time.monotonic() + timeout
        while control not in seen:
            left = deadline - time.monotonic()
            assert left > 0, "the control SYN never reached netns0"
            rx.settimeout(left)
            frame = rx.recv(2048)
            if frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            tcp = frame[14 + (frame[14] & 0xF) * 4:]
            sport, dport = struct.unpack("!HH", tcp[:4])
            if dport == 5000 and tcp[13] & 0x12 == 0x02:
                seen.add(sport)
    return seen


def test_hairpin_and_localhost(lab, backend):
    lab.up("hairpin", backend=backend)
    assert PAGE in get(lab, "host", "http://127.0.0.1:5000/")
    assert PAGE in get(lab, "netns0", PUBLISHED)       # hairpin: its own published port
    assert PAGE in get(lab, "netns1", PUBLISHED)
    assert PAGE in get(lab, "world", PUBLISHED)
    assert fails(lab, "netns0", "http://127.0.0.1:5000/")  # a container's 127.0.0.1 is its own
    # a neighbour's SYN to 127.0.0.1:5000 is dropped; one to 10.0.2.15:5000 (control) gets in
    assert syns_reaching_netns0(lab, {40001: "127.0.0.1", 40002: "10.0.2.15"}, 40002) == {40002}
    # and it is the guard that stops it: without that one rule the packet is DNATed inside
    if backend == "nftables":
        lab.exec("host", ["nft", "flush", "chain", "ip", "labkit", "raw_prerouting"], check=True)
    else:
        lab.exec("host", ["iptables", "-t", "raw", "-D", "PREROUTING", "-d", "127.0.0.0/8",
                          "!", "-i", "lo", "-j", "DROP"], check=True)
    assert syns_reaching_netns0(lab, {40003: "127.0.0.1", 40004: "10.0.2.15"}, 40004) == {40003, 40004}
    lab.up("hairpin")  # converging puts the guard back
    assert syns_reaching_netns0(lab, {40005: "127.0.0.1", 40006: "10.0.2.15"}, 40006) == {40006}


def _sysctl(lab, key: str) -> str | None:
    from labkit.kernel import sysctl
    return sysctl.read(lab.ns("host"), key)


def test_removal_is_exact(lab, backend):
    lab.up("bridge")
    bridge_nf = _sysctl(lab, nat.BRIDGE_NF)
    lab.up("hairpin", backend=backend)
    assert _sysctl(lab, "net.ipv4.conf.br0.route_localnet") == "1"
    assert bridge_nf is None or _sysctl(lab, nat.BRIDGE_NF) == "0"
    lab.up("publish")                       # localhost publishing goes, with its helpers
    assert _sysctl(lab, "net.ipv4.conf.br0.route_localnet") == "0"
    assert "raw" not in host_tables(lab)
    assert not any("127.0.0" in r for r in iptables_rules(lab))
    lab.up("bridge")                        # no NAT at all: nothing of either backend is left
    assert host_tables(lab) == [] and iptables_rules(lab) == []
    assert _sysctl(lab, nat.BRIDGE_NF) == bridge_nf
    lab.up("hairpin")
    nat.remove(lab.name, journal=lab.journal)
    assert host_tables(lab) == [] and iptables_rules(lab) == []
    assert _sysctl(lab, "net.ipv4.conf.br0.route_localnet") == "0"
    assert nat.status_lines(lab.name, journal=lab.journal) == [f"NAT: no rules in namespace {lab.ns('host')}"]
    lab.down()
    assert not any(n.startswith(lab.name + "-") for n in netns.names())
    assert nat.status_lines(lab.name, journal=lab.journal) == []


def test_switching_backends_leaves_nothing_of_the_other(lab):
    lab.up("hairpin", backend="nftables")
    assert host_tables(lab) == ["labkit"] and iptables_rules(lab) == []
    lab.up("hairpin", backend="iptables")
    assert "labkit" not in host_tables(lab) and len(iptables_rules(lab)) == 8
    assert PAGE in get(lab, "world", PUBLISHED)
    lab.up("publish")                      # None keeps the lab's backend
    assert nat.read(lab.name, journal=lab.journal)[0] == "iptables"
    lab.up("hairpin", backend="nftables")
    assert host_tables(lab) == ["labkit"] and iptables_rules(lab) == []
    assert PAGE in get(lab, "host", "http://127.0.0.1:5000/")
    assert list(nat.live_rules(lab.name)) == ["nftables"]


def test_missing_tool_changes_nothing(lab, tmp_path, monkeypatch):
    lab.up("publish", backend="nftables")
    before = nat.live_rules(lab.name)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if os.path.isdir(d):
            for name in os.listdir(d):
                if name not in ("iptables", "iptables-save") and not (bindir / name).exists():
                    (bindir / name).symlink_to(os.path.join(d, name))
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(MissingTool, match="apt-get install iptables"):
        lab.up("hairpin", backend="iptables")
    assert lab.stage == "publish" and nat.backend_of(lab.journal) == "nftables"
    assert nat.live_rules(lab.name) == before
    monkeypatch.undo()


def test_publish_unpublish(lab, backend):
    lab.up("publish", backend=backend)
    second = Service("netns1", ("python3", "-m", "http.server", "--bind", "172.18.0.20", "8080"),
                     "172.18.0.20", 8080)
    service.start(lab.name, second, lab.journal)
    mapping = lab.publish("netns1", 8081, to_port=8080)
    assert mapping == PortMapping("10.0.2.15", 8081, "172.18.0.20", 8080)
    assert "Hello from netns1" in get(lab, "world", "http://10.0.2.15:8081/")
    assert "Hello from netns1" in get(lab, "netns1", "http://10.0.2.15:8081/")  # hairpin too
    rules = nat.live_rules(lab.name)
    assert lab.publish("netns1", 8081, to_port=8080) == mapping   # same again: no-op
    assert nat.live_rules(lab.name) == rules
    assert lab.unpublish(8081) == mapping
    assert fails(lab, "world", "http://10.0.2.15:8081/")
    assert lab.unpublish(8081) is None
    assert PAGE in get(lab, "world", PUBLISHED)          # the stage's own mapping is untouched
    assert set(nat.read(lab.name, journal=lab.journal)[1]) == set(lab.plan("publish").nat)


def test_publish_bad_input_changes_nothing(lab, backend):
    lab.up("publish", backend=backend)
    rules, entries = nat.live_rules(lab.name), nat.entries_of(lab.journal)
    with pytest.raises(nat.AlreadyPublished, match="already published to 172.18.0.10:5000"):
        lab.publish("netns1", 5000)
    with pytest.raises(BadValue, match="1 to 65535"):
        lab.publish("netns1", 70000)
    with pytest.raises(BadValue, match="1 to 65535"):
        lab.publish("netns1", 8080, to_port=0)
    with pytest.raises(UnknownName, match="no container 'netns7'"):
        lab.publish("netns7", 8080)
    with pytest.raises(UnknownName, match="no container 'world'"):
        lab.publish("world", 8080)
    with pytest.raises(BadAddress, match="not an address of the lab's host"):
        lab.publish("netns1", 80, address=plan.PUBLIC_SERVER)   # would capture transit traffic
    with pytest.raises(BadValue, match="tcp or udp"):
        lab.publish("netns1", 8080, proto="icmp")
    assert nat.live_rules(lab.name) == rules and nat.entries_of(lab.journal) == entries


def test_api_needs_a_lab_that_is_up(lab):
    with pytest.raises(UnknownName, match="is not up"):
        lab.masquerade()
    lab.up("bridge")
    assert lab.masquerade() == nat.Masquerade(plan.BRIDGE_NET, "br0")
    assert lab.masquerade() == nat.Masquerade(plan.BRIDGE_NET, "br0")  # no-op
    assert nat.read(lab.name, journal=lab.journal)[1] == (nat.Masquerade(plan.BRIDGE_NET, "br0"),)
    assert host_tables(lab) == ["labkit"]


def test_publish_without_privileges_says_so(lab, tmp_path):
    """Lab.publish (labkit.nat) from a process without CAP_SYS_ADMIN: NotPrivileged (how to run it), not a
    KernelError about setns failing with 'Operation not permitted'."""
    lab.up("publish")
    code = (f"from labkit import Lab\nfrom labkit.errors import NotPrivileged\n"
            f"lab = Lab({lab.name!r})\n"
            f"for call in (lambda: lab.publish('netns0', 8080),\n"
            f"             lambda: lab.unpublish(5000),\n"
            f"             lambda: lab.masquerade()):\n"
            f"    try:\n        call()\n        print('no error')\n"
            f"    except NotPrivileged:\n        print('NotPrivileged')\n"
            f"    except Exception as e:\n        print(type(e).__name__, e)\n")
    result = without_capabilities("-c", code, HOME=str(tmp_path))
    assert result.stdout.split("\n")[:3] == ["NotPrivileged"] * 3, result.stdout + result.stderr
    assert lab.drift() == []


@pytest.mark.parametrize("backend, tools, package", [
    ("nftables", ("nft",), "apt-get install nftables"),
    ("iptables", ("iptables", "iptables-save"), "apt-get install iptables"),
])
def test_up_without_the_nat_tool_is_refused_before_anything_is_made(lab, tmp_path, monkeypatch,
                                                                   backend, tools, package):
    path_without(tmp_path, monkeypatch, *tools)
    with pytest.raises(MissingTool, match=package):
        lab.up("outside", backend=backend)
    assert not lab.journal.exists()


def test_up_with_an_unknown_backend_is_refused_before_anything_is_made(lab):
    with pytest.raises(UnknownName, match="nftables or iptables"):
        lab.up("outside", backend="ipfw")
    assert not lab.journal.exists()
