"""A lab of one's own as plain data (no root): the Blueprint builder and its checks, topology
files (dict and TOML), Topology.from_dict, the stages written with the builder, and the CLI
parts that need no kernel (`labkit draw --topology`, errors as one line)."""
import json
import pathlib
import subprocess
import sys

import pytest

import labkit
from labkit import Blueprint, load_blueprint
from labkit.errors import BadAddress, BadName, BadValue, LabkitError, UnknownName
from labkit.model import stages, topology_file, validation
from labkit.model.topology import (Interface, Masquerade, Namespace, PortMapping, Route, Service,
                                   Topology)

from harness import REPO

EXAMPLE = pathlib.Path(REPO) / "examples" / "two-networks.toml"
V6 = (("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"),
      ("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0"))  # and rp_filter off


def two_networks() -> Blueprint:
    """Notebook 08's lab: br0 172.18/16 and br1 172.19/16 in host; web on A, db on B, api on both."""
    bp = Blueprint("two-networks")
    bp.namespace("host", kind="host").namespace("web").namespace("db").namespace("api")
    bp.bridge("host", "br0", "172.18.0.1/16").bridge("host", "br1", "172.19.0.1/16")
    bp.veth("host:veth-web", "web:eth0", master="br0", peer_address="172.18.0.2/16")
    bp.veth("host:veth-db", "db:eth0", master="br1", peer_address="172.19.0.2/16")
    bp.veth("host:veth-api0", "api:eth0", master="br0", peer_address="172.18.0.3/16")
    bp.veth("host:veth-api1", "api:eth1", master="br1", peer_address="172.19.0.3/16")
    bp.route("web", "default", via="172.18.0.1").route("db", "default", via="172.19.0.1")
    bp.route("api", "default", via="172.18.0.1")
    return bp.sysctl("host", "net.ipv4.ip_forward", 1)


# -- the builder ------------------------------------------------------------------------------

def test_two_networks_plan():
    t = two_networks().build("diy")
    assert (t.lab, t.stage, [ns.role for ns in t.namespaces]) == ("diy", "two-networks",
                                                                    ["host", "web", "db", "api"])
    host, api = t.namespace("host"), t.namespace("api")
    assert [i.name for i in host.interfaces] == ["lo", "veth-web", "veth-db", "veth-api0",
                                                 "veth-api1", "br0", "br1"]
    assert host.interface("br1") == Interface("br1", "bridge", ("172.19.0.1/16",), "02:42:ac:13:00:01")
    assert host.interface("veth-api1").master == "br1"
    assert host.interface("veth-api1").peer == ("api", "eth1")
    assert api.interface("eth1") == Interface("eth1", "veth", ("172.19.0.3/16",), "02:42:ac:13:00:03",
                                              ("host", "veth-api1"))
    assert api.routes == (Route("default", "172.18.0.1"),)
    assert host.sysctls == V6 + (("net.ipv4.ip_forward", "1"),)
    assert all(ns.sysctls[:4] == V6 for ns in t.namespaces)          # IPv6 off everywhere
    assert [(ns.role, ns.kind) for ns in t.namespaces] == [("host", "host"), ("web", "container"),
                                                           ("db", "container"), ("api", "container")]
    assert [ns.role for ns in t.containers] == ["web", "db", "api"]
    assert t.nat == () and t.services == ()


def test_the_example_file_is_notebook_08s_lab():
    assert load_blueprint(EXAMPLE).build("diy") == two_networks().build("diy")


def test_nat_and_servers():
    bp = two_networks().namespace("world", "world")
    bp.veth("host:ens18", "world:wan0", address="10.0.2.15/24", peer_address="10.0.2.2/24")
    bp.publish("10.0.2.15", 8080, "172.18.0.2", 80).masquerade("172.18.0.0/16", not_out="br0")
    bp.server("web", "172.18.0.2", 80).server("world", "10.0.2.2", 80, kind="whoami")
    t = bp.build("t1")
    assert t.nat == (Masquerade("172.18.0.0/16", "br0"),                # masquerades first
                     PortMapping("10.0.2.15", 8080, "172.18.0.2", 80))
    assert t.services == (
        Service("web", ("python3", "-m", "http.server", "--bind", "172.18.0.2", "80"), "172.18.0.2", 80),
        Service("world", ("python3", "-m", "labkit.lab.service", "whoami", "10.0.2.2", "80"), "10.0.2.2", 80))


def _bp(*extra):
    """two_networks() with more calls, each (method, args, kwargs)."""
    bp = two_networks()
    for method, args, kwargs in extra:
        getattr(bp, method)(*args, **kwargs)
    return bp


BAD_CALLS = {
    "namespace name too long": (lambda: Blueprint().namespace("a" * 16), BadName, "at most 15"),
    "interface name too long": (lambda: _bp(("bridge", ("host", "bridge-of-net-c"), {}),
                                            ("bridge", ("host", "bridge-of-net-cc"), {})),
                                BadName, "at most 15"),
    "name with a colon": (lambda: Blueprint().namespace("a:b"), BadName, "letters, digits"),
    "unknown kind": (lambda: Blueprint().namespace("a", kind="vm"), BadValue, "host, world, container"),
    "unknown kind, older keyword": (lambda: Blueprint().namespace("a", role="vm"), BadValue,
                                    "host, world, container"),
    "kind and role disagree": (lambda: Blueprint().namespace("a", kind="host", role="world"), BadValue,
                               "give kind alone"),
    "namespace twice": (lambda: _bp(("namespace", ("web",), {})), BadName, "declared twice"),
    "interface twice": (lambda: _bp(("bridge", ("host", "br0"), {})), BadName, "already (a bridge)"),
    "veth into an undeclared namespace": (
        lambda: _bp(("veth", ("host:veth-x", "x:eth0"), {})), UnknownName, "'x' is not declared"),
    "veth end without a colon": (lambda: _bp(("veth", ("host", "web:eth1"), {})), BadValue,
                                 "NAMESPACE:INTERFACE"),
    "veth with both ends in one namespace": (
        lambda: _bp(("veth", ("web:a", "web:b"), {})), BadValue, "both ends"),
    "bad CIDR": (lambda: _bp(("bridge", ("host", "br2", "172.20.0.1"), {})), BadAddress,
                 "prefix length"),
    "network address on an interface": (lambda: _bp(("bridge", ("host", "br2", "172.20.0.0/16"), {})),
                                        BadAddress, "network address of 172.20.0.0/16"),
    "loopback address": (lambda: _bp(("address", ("web", "lo", "127.0.0.2/8"), {})), BadAddress,
                         "loopback"),
    "address on an undeclared interface": (lambda: _bp(("address", ("web", "eth9", "10.1.0.1/24"), {})),
                                           UnknownName, "no interface 'eth9'"),
    "route via and dev": (lambda: _bp(("route", ("web", "10.9.0.0/16"), {"via": "172.18.0.1", "dev": "eth0"})),
                          BadValue, "either via"),
    "route with host bits": (lambda: _bp(("route", ("web", "10.9.0.1/16"), {"via": "172.18.0.1"})),
                             BadAddress, "write the network, 10.9.0.0/16"),
    "sysctl outside net": (lambda: _bp(("sysctl", ("host", "kernel.hostname", "x"), {})), BadName,
                           "net.*"),
    "bad port": (lambda: _bp(("server", ("web", "172.18.0.2", 70000), {})), BadValue, "1 to 65535"),
    "unknown server kind": (lambda: _bp(("server", ("web", "172.18.0.2", 80), {"kind": "nginx"})),
                            BadValue, "http or whoami"),
}

BAD_BUILDS = {
    "namespace too long with the lab's prefix": (
        lambda: _bp(("namespace", ("frontend1",), {})), "abcdef", BadName,
        "'abcdef-frontend1' in lab 'abcdef': 16 characters"),
    "address used twice": (lambda: _bp(("address", ("db", "eth0", "172.18.0.2/16"), {})), "t1",
                           BadAddress, "172.18.0.2 is used twice, on web:eth0 and on db:eth0"),
    "master that is no bridge": (
        lambda: _bp(("namespace", ("c",), {}), ("veth", ("host:veth-c", "c:eth0"), {"master": "br9"})),
        "t1", UnknownName, "master 'br9' is not a bridge in namespace 'host' (its bridges: br0, br1)"),
    "master on the container's side": (
        lambda: _bp(("namespace", ("c",), {}), ("veth", ("host:veth-c", "c:eth0"), {"peer_master": "br0"})),
        "t1", UnknownName, "c:eth0: master 'br0' is not a bridge in namespace 'c'"),
    "route via an unreachable gateway": (
        lambda: _bp(("route", ("web", "10.9.0.0/16"), {"via": "172.19.0.1"})), "t1", BadAddress,
        "cannot reach the gateway"),
    "route the kernel makes itself": (
        lambda: _bp(("route", ("web", "172.18.0.0/16"), {"dev": "eth0"})), "t1", BadValue,
        "the kernel makes that route itself"),
    "route twice": (lambda: _bp(("route", ("web", "default"), {"via": "172.18.0.1"})), "t1", BadValue,
                    "has a route to default already"),
    "route out of an unknown interface": (lambda: _bp(("route", ("web", "10.9.0.0/16"), {"dev": "eth7"})),
                                          "t1", UnknownName, "no interface 'eth7'"),
    "NAT outside the host namespace": (
        lambda: _bp(("masquerade", ("172.18.0.0/16",), {"namespace": "api"})), "t1", BadValue,
        "NAT only in the namespace named 'host' for now"),
    "publish on an address that is not the host's": (
        lambda: _bp(("publish", ("172.18.0.2", 80, "172.19.0.2"), {})), "t1", BadAddress,
        "not an address of 'host'"),
    "publish to an address nobody holds": (
        lambda: _bp(("publish", ("172.18.0.1", 80, "172.19.0.99"), {})), "t1", BadAddress,
        "no interface of the lab holds"),
    "server on an address of another namespace": (
        lambda: _bp(("server", ("web", "172.19.0.2", 80), {})), "t1", BadAddress,
        "web does not hold 172.19.0.2"),
    "bad lab name": (lambda: two_networks(), "TOOLONG", BadName, "1 to 6 characters"),
}


@pytest.mark.parametrize("case", BAD_CALLS, ids=str)
def test_a_bad_call_is_refused_at_once(case):
    make, cls, text = BAD_CALLS[case]
    with pytest.raises(cls, match=None) as info:
        make()
    assert text in str(info.value)


@pytest.mark.parametrize("case", BAD_BUILDS, ids=str)
def test_build_checks_the_whole(case):
    make, lab, cls, text = BAD_BUILDS[case]
    bp = make()                                     # every call alone was fine
    with pytest.raises(cls) as info:
        bp.build(lab)
    assert text in str(info.value)


def test_validation_checks_a_hand_made_topology_too():
    t = two_networks().build("t1")
    host = t.namespace("host")
    bad_peer = Interface("veth-web", "veth", (), None, ("web", "eth5"), "br0")
    broken = Topology("t1", "x", (Namespace("host", "host", (bad_peer,)),) + t.namespaces[1:])
    with pytest.raises(UnknownName, match="its peer web:eth5 is not a veth whose peer is host:veth-web"):
        validation.check(broken)
    assert validation.check(t) is t and host is t.namespaces[0]


# -- the stages, written with the builder ---------------------------------------------------------

def test_veth_stage_in_full():
    assert stages.build("veth", "t1") == Topology("t1", "veth", (
        Namespace("host", "host", (
            Interface("lo", "loopback"),
            Interface("ens18", "veth", ("10.0.2.15/24",), "02:42:0a:00:02:0f", ("world", "wan0")),
            Interface("veth0", "veth", ("172.18.0.11/16",), "02:42:ac:12:00:0b", ("netns0", "ceth0"))),
            (Route("default", "10.0.2.2"),), V6 + (("net.ipv4.ip_forward", "0"),)),
        Namespace("world", "world", (
            Interface("lo", "loopback", ("203.0.113.80/32",)),
            Interface("wan0", "veth", ("10.0.2.2/24",), "02:42:0a:00:02:02", ("host", "ens18"))), (), V6),
        Namespace("netns0", "container", (
            Interface("lo", "loopback"),
            Interface("ceth0", "veth", ("172.18.0.10/16",), "02:42:ac:12:00:0a", ("host", "veth0"))), (), V6)))


def test_hairpin_stage_nat_services_and_routes():
    t = stages.build("hairpin", "", 3)
    assert t.nat == (Masquerade("172.18.0.0/16", "br0"),
                     PortMapping("10.0.2.15", 5000, "172.18.0.10", 5000),
                     PortMapping("127.0.0.1", 5000, "172.18.0.10", 5000))
    assert t.services == (
        Service("world", ("python3", "-m", "labkit.lab.service", "whoami", "203.0.113.80", "80"),
                "203.0.113.80", 80),
        Service("netns0", ("python3", "-m", "http.server", "--bind", "172.18.0.10", "5000"),
                "172.18.0.10", 5000))
    assert [ns.routes for ns in t.containers] == [(Route("default", "172.18.0.1"),)] * 3
    assert t.namespace("host").sysctls[-1] == ("net.ipv4.ip_forward", "1")


@pytest.mark.parametrize("n", [1, 2, 3, 30])
def test_bridge_stage_host_side(n):
    host = stages.build("bridge", "t1", n).namespace("host")
    assert [i.name for i in host.interfaces] == ["lo", "ens18", *(f"veth{k}" for k in range(n)), "br0"]
    for k in range(n):
        veth = host.interface(f"veth{k}")
        assert (veth.addresses, veth.master, veth.peer) == ((), "br0", (f"netns{k}", f"ceth{k}"))
        assert veth.mac.startswith("02:00:")                      # from its name: it has no address
    assert host.interface("br0").addresses == ("172.18.0.1/16",)


# -- plain data: dict, TOML, JSON -----------------------------------------------------------------

@pytest.mark.parametrize("stage", stages.STAGES)
def test_every_stage_round_trips_through_toml(stage, tmp_path):
    path = topology_file.write(stages.blueprint(stage, 3), tmp_path / f"{stage}.toml")
    assert load_blueprint(path).build("t1") == stages.build(stage, "t1", 3)


def test_dict_and_json_round_trips():
    bp = two_networks()
    assert Blueprint.from_dict(bp.to_dict()).to_dict() == bp.to_dict()
    assert load_blueprint(json.loads(json.dumps(bp.to_dict()))).build("t1") == bp.build("t1")
    for t in (bp.build("t1"), stages.build("hairpin", "t1", 2)):
        assert Topology.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(BadValue, match="not a topology as Topology.to_dict writes it"):
        Topology.from_dict({"namespaces": []})


def test_the_older_spellings_of_a_namespace_still_read(tmp_path):
    """`role` for the kind in code and files written before `kind`; and the journal of a lab
    brought up before the rename, whose namespaces are {"name": "netns0", "role": "container"}."""
    assert Blueprint("x").namespace("host", role="host").to_dict() == \
        Blueprint("x").namespace("host", kind="host").to_dict() == \
        {"name": "x", "namespaces": [{"name": "host", "kind": "host"}]}
    assert 'kind = "host"' in EXAMPLE.read_text()
    older = _toml(tmp_path, EXAMPLE.read_text().replace("kind = ", "role = "))
    assert load_blueprint(older).build("diy") == two_networks().build("diy")
    for t in (two_networks().build("t1"), stages.build("hairpin", "t1", 2)):
        data = json.loads(json.dumps(t.to_dict()))
        assert {"role", "kind"} <= set(data["namespaces"][0]) and "name" not in data["namespaces"][0]
        for ns in data["namespaces"]:
            ns["name"], ns["role"] = ns.pop("role"), ns.pop("kind")
        assert Topology.from_dict(data) == t


def _toml(tmp_path, text: str) -> str:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return str(path)


BAD_FILES = {
    "not TOML": ('name = "x"\n[[namespaces]\n', "not valid TOML", "line 2"),
    "unknown section": ('name = "x"\n[[bridge]]\nname = "br0"\n', "unknown section 'bridge'",
                        "the sections are name, namespaces, veths"),
    "unknown key": ('[[namespaces]]\nname = "a"\ntype = "host"\n', "namespaces entry 1: unknown key 'type'",
                    "its keys are name, kind, role"),
    "missing key": ('[[namespaces]]\nname = "a"\n[[bridges]]\nname = "br0"\n',
                    "bridges entry 1: missing key 'namespace'", "namespace, name, address"),
    "bad value in an entry": ('[[namespaces]]\nname = "a"\n[[namespaces]]\nname = "b"\n'
                              '[[veths]]\nend = "a:x"\npeer = "b:y"\naddress = "10.0.0.1"\n',
                              "veths entry 1: a:x: '10.0.0.1' is not an IPv4 address with prefix length",
                              "write it like"),
    "a whole that does not hold": ('[[namespaces]]\nname = "a"\n[[namespaces]]\nname = "b"\n'
                                   '[[veths]]\nend = "a:x"\npeer = "b:y"\nmaster = "br0"\n',
                                   "master 'br0' is not a bridge in namespace 'a'", "declare the bridge"),
    "a section that is not a list": ('namespaces = "host"\n', "namespaces must be a list", "[[namespaces]]"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_file_errors_name_the_file_the_entry_and_the_fix(case, tmp_path):
    text, problem, fix = BAD_FILES[case]
    path = _toml(tmp_path, text)
    with pytest.raises(LabkitError) as info:
        load_blueprint(path).build("t1")
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message and fix in message, message


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(BadValue, match="no such topology file"):
        load_blueprint(tmp_path / "nope.toml")


# -- the package face and the Lab's plan (no root) ------------------------------------------------

def test_public_names():
    assert labkit.Blueprint is Blueprint and labkit.load_blueprint is topology_file.load
    assert {"Lab", "LabkitError", "Blueprint", "load_blueprint"} <= set(labkit.__all__)
    for obj in (Blueprint, *(getattr(Blueprint, m) for m in ("namespace", "veth", "bridge", "route",
                                                              "build")), labkit.load_blueprint):
        assert obj.__doc__ and obj.__doc__.strip()


def test_lab_plan_takes_every_form_of_a_topology():
    lab = labkit.Lab("t1")
    want = two_networks().build("t1")
    for form in (two_networks(), two_networks().to_dict(), str(EXAMPLE), EXAMPLE,
                 two_networks().build("other")):
        assert lab.plan(form) == want
    assert lab.plan(stages.build("bridge", "zz", 3)) == stages.build("bridge", "t1", 3)
    with pytest.raises(UnknownName, match="choose one of veth.*or give the path of a topology file"):
        lab.plan("bridges")
    with pytest.raises(BadValue, match="applies to a stage"):
        lab.plan(two_networks(), containers=3)
    with pytest.raises(BadName, match="'bridge' is a stage's"):
        lab.plan(Blueprint("bridge").namespace("a"))


def labkit_cli(*argv):
    return subprocess.run([sys.executable, "-c", "import sys; from labkit.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True,
                          timeout=120)


def test_cli_draws_a_topology_file_without_root(tmp_path):
    out = tmp_path / "two.svg"
    result = labkit_cli("draw", "--topology", str(EXAMPLE), "--lab", "diy", "-o", str(out))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert "br1" in svg and "172.19.0.3/16" in svg and "veth-api1" in svg


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    bad = _toml(tmp_path, '[[namespaces]]\nname = "frontend1"\n')
    for argv, text in ((("draw", "--topology", bad, "--lab", "abcdef"), "shorten the namespace name"),
                       (("up", "--lab", "t1"), "give a STAGE or --topology FILE"),
                       (("up", "bridge", "--topology", bad), "give a STAGE or --topology FILE")):
        result = labkit_cli(*argv)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert text in result.stderr and "Traceback" not in result.stderr
