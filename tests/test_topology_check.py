"""A lab of one's own checked like a stage (lab.check(blueprint), `labkit check --topology
FILE`): done when built; each declared piece left out is named; the expectations it declares
sent as real traffic, met and unmet both ways; bad expectations refused with their fix."""
import subprocess
import sys

import pytest

from labkit import Blueprint, Lab, load_blueprint
from labkit.kernel import netns
from labkit.errors import BadAddress, BadValue, LabkitError, UnknownName
from labkit.lab import progress
from unit.test_topology import EXAMPLE  # tests/unit: the unit tier

kernel = pytest.mark.kernel


def without_expects(bp: Blueprint) -> Blueprint:
    return Blueprint.from_dict({k: v for k, v in bp.to_dict().items() if k != "expects"})


def pieces(lab, bp: Blueprint):
    """Each piece the blueprint declares: (its name, the commands that take it out of the
    built lab as (role, argv), words an unmet item must hold). Generated from the plan."""
    want = bp.build(lab.name)
    for ns in want.namespaces:
        yield (f"namespace {ns.role}", [(None, lab.ns(ns.role))],
               f"namespace {lab.ns(ns.role)} does not exist")
        for itf in ns.interfaces:
            if itf.kind == "loopback":
                continue
            where = itf.name if ns.role == "host" else f"{itf.name} in {ns.role}"
            if itf.kind == "bridge" or ns.role == "host":
                yield (f"link {ns.role}:{itf.name}", [(ns.role, ["ip", "link", "del", itf.name])],
                       f"{itf.name} does not exist")
            if itf.master:
                yield (f"master of {itf.name}", [(ns.role, ["ip", "link", "set", itf.name, "nomaster"])],
                       f"{itf.name} is not a port of {itf.master}")
            for cidr in itf.addresses:
                yield (f"address {cidr}", [(ns.role, ["ip", "addr", "del", cidr, "dev", itf.name])],
                       f"{where} lacks {cidr}")
            yield (f"{ns.role}:{itf.name} up", [(ns.role, ["ip", "link", "set", itf.name, "down"])],
                   f"{where} is down")
        for route in ns.routes:
            yield (f"route in {ns.role}", [(ns.role, ["ip", "route", "del", route.dst])],
                   f"{ns.role} has no route {route.dst} via {route.gateway}")
    for call in bp.to_dict().get("sysctls", []):
        yield (f"sysctl {call['key']}", [(call["namespace"], ["sysctl", "-qw", f"{call['key']}=0"])],
               f"{call['key'].rsplit('.', 1)[-1]} is 0")


@kernel
def test_done_when_built_and_each_piece_left_out_is_named(lab, monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    bp = without_expects(load_blueprint(EXAMPLE))
    before = lab.check(bp)
    assert not before and "namespace" in before.unmet[0].what       # nothing built yet
    lab.up(bp)
    done = lab.check(bp)
    assert done.ok, done.text(3)
    assert done.text().startswith(f"topology two-networks: done (lab {lab.name} has what")
    records = progress.load()
    assert [(r.stage, r.lab, r.done) for r in records[-2:]] == [("two-networks", lab.name, False),
                                                               ("two-networks", lab.name, True)]
    seen = []
    for name, commands, named in pieces(lab, bp):
        for role, argv in commands:
            netns.delete(argv) if role is None else lab.exec(role, argv, check=True)
        result = lab.check(bp)
        unmet = [i.what for i in result.unmet]
        assert not result.ok and any(named in what for what in unmet), (name, named, unmet)
        assert all(i.fix for i in result.unmet if i.layer != "traffic"), (name, result.text(3))
        seen.append(name)
        lab.up(bp)                                                   # back to the whole lab
    assert len(seen) >= 25 and lab.check(bp).ok                      # 4 namespaces, 2 bridges, ...


def drop(lab, *extra):
    lab.exec("host", ["iptables", "-I", "FORWARD", "-i", "br0", "-o", "br1", *extra, "-j", "DROP"],
             check=True)


@kernel
def test_expectations_met_and_unmet_both_ways(lab):
    bp = without_expects(load_blueprint(EXAMPLE)).server("db", "172.19.0.2", 5432)
    bp.expect("web", "db")                                  # should hold
    bp.expect("web", "172.19.0.2", reaches=False)           # should fail
    bp.expect("web", "db", port=5432)                       # a TCP connect
    lab.up(bp)
    result = lab.check(bp)
    said = {i.what: i for i in result.items if i.layer == "traffic"}
    assert list(said) == ["web reaches db (172.19.0.2)",
                          "web should not reach 172.19.0.2, and it does",
                          "web reaches db (172.19.0.2) on TCP port 5432"], list(said)
    assert [i.ok for i in said.values()] == [True, False, True]
    wrong = said["web should not reach 172.19.0.2, and it does"]
    assert "iptables -S FORWARD" in wrong.look
    assert "iptables -I FORWARD -s 172.18.0.2 -d 172.19.0.2 -j DROP" in wrong.fix
    drop(lab)                                               # now nothing crosses from br0 to br1
    result = lab.check(bp)
    said = {i.what: i.ok for i in result.items if i.layer == "traffic"}
    assert said == {"web should reach db (172.19.0.2), and it does not (no answer)": False,
                    "web does not reach 172.19.0.2 (no answer), as expected": True,
                    "web should reach db (172.19.0.2) on TCP port 5432, and it does not "
                    "(no answer)": False}, said
    assert not result.ok and "ACCEPT" in result.text(3)
    only = without_expects(bp).expect("web", "db", reaches=False).expect("api", "db", port=5432)
    assert lab.check(only).ok, lab.check(only).text(3)     # api reaches db on its own bridge


@pytest.mark.parametrize("call, error, words", [
    (("ghost", "db"), UnknownName, "src 'ghost' is not a declared namespace"),
    (("web", "dbx"), UnknownName, "neither a declared namespace .* nor an IPv4 address: name one"),
    (("web", "172.19.0.300"), BadAddress, "write it like"),
    (("web", "224.0.0.1"), BadAddress, "not one host's address: name a namespace"),
    (("web", "db", True, 70000), BadValue, "port 70000 is out of range: use a whole number"),
    (("web", "db", True, "80"), BadValue, "out of range: use a whole number"),
    (("web", "db", "yes"), BadValue, "reaches='yes': write true or false"),
])
def test_bad_expectations_are_refused_with_their_fix(call, error, words):
    bp = load_blueprint(EXAMPLE)
    with pytest.raises(error, match=words):
        bp.expect(*call)


def test_a_bad_expects_entry_in_a_file_names_the_file_and_the_entry(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text() + '\n[[expects]]\nsrc = "web"\ndst = "db"\nport = 0\n')
    with pytest.raises(BadValue, match=r"bad.toml: expects entry 3: expect web -> db: port 0 is out"):
        load_blueprint(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(EXAMPLE.read_text() + '\n[[expects]]\nsrc = "web"\nto = "db"\n')
    with pytest.raises(BadValue, match="unknown key 'to': its keys are src, dst, reaches, port"):
        load_blueprint(unknown)


def test_a_namespace_without_an_address_cannot_be_sent_to():
    bp = Blueprint("lonely").namespace("a").namespace("b").expect("a", "b")
    with pytest.raises(LabkitError, match="b holds no address in the blueprint.*give one of its"):
        Lab("zz").check(bp)             # said before anything is read or sent: no root needed


def labkit_cli(*argv):
    return subprocess.run([sys.executable, "-c", "import sys; from labkit.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True,
                          timeout=120)


@kernel
def test_cli_check_topology_exits_0_when_done_and_1_naming_what_is_missing(lab):
    lab.up(EXAMPLE)
    done = labkit_cli("check", "--topology", str(EXAMPLE), "--lab", lab.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("topology two-networks: done"), done.stdout
    lab.exec("host", ["ip", "link", "del", "br1"], check=True)
    broken = labkit_cli("check", "--topology", str(EXAMPLE), "--lab", lab.name, "--fix")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "br1 does not exist" in broken.stdout and "ip link add br1 type bridge" in broken.stdout
    assert "web should reach db (172.19.0.2), and it does not (no answer)" in broken.stdout


def test_cli_check_takes_a_stage_or_a_topology_not_both():
    both = labkit_cli("check", "bridge", "--topology", str(EXAMPLE))
    assert both.returncode == 2 and "not both" in both.stderr and "Traceback" not in both.stderr
