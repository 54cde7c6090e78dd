"""NAT without root: rules from the model, both tools' commands, parsing, bad input."""
from __future__ import annotations

import json

import pytest

from labkit.nat import api as nat
from labkit.nat import rules as nat_rules
from labkit.nat import _iptables as iptables
from labkit.nat import _nftables as nftables
from labkit.model import plan
from labkit.model import stages
from labkit.errors import BadAddress, BadName, BadValue, LabkitError, MissingTool, UnknownName
from labkit.model import Masquerade, PortMapping

from harness import path_without

SEED_MASQ = "iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE"
SEED_DNAT = ("iptables -t nat -A {chain} -d 10.0.2.15 -p tcp -m tcp --dport 5000 "
             "-j DNAT --to-destination 172.18.0.10:5000")
PUBLISHED = PortMapping("10.0.2.15", 5000, "172.18.0.10", 5000)
LOCAL = PortMapping("127.0.0.1", 5000, "172.18.0.10", 5000)
MASQ = Masquerade("172.18.0.0/16", "br0")


def test_seed_commands_exactly():
    lines = nat_rules.commands(stages.build("publish").nat, "iptables")
    assert SEED_MASQ in lines
    assert SEED_DNAT.format(chain="PREROUTING") in lines
    assert SEED_DNAT.format(chain="OUTPUT") in lines


def test_both_tools_for_every_rule():
    entries = stages.build("hairpin").nat
    rules = nat_rules.rules_for(entries)
    both = nat_rules.commands(entries)
    for rule in rules:
        assert "iptables " + nat_rules.shell_words(rule.iptables()) in both
        assert rule.nft_command() in both
    rows = nat_rules.explain(entries)
    assert len(rows) == len(rules) and all(why and ipt and nft for why, ipt, nft in rows)
    assert nat_rules.commands(entries, "nft", namespace="t1-host")[0].startswith("ip netns exec t1-host ")
    with pytest.raises(BadValue):
        nat_rules.commands(entries, "pf")


def test_dnat_names_the_published_address_only():
    """GHSA-jv3w-x3r3-g6rm: a DNAT rule that matched any destination captured transit traffic."""
    for rule in nat_rules.rules_for([PUBLISHED, LOCAL, PortMapping("10.0.2.15", 80, "172.18.0.20", 8080, "udp")]):
        if rule.action == "DNAT":
            assert rule.daddr in ("10.0.2.15", "127.0.0.1")
            assert "-d" in rule.iptables() and "ip daddr" in rule.nft()


def test_stage_rules():
    outside = nat_rules.rules_for(stages.build("outside").nat)
    assert [r.iptables() for r in outside] == [SEED_MASQ.split()[1:]]
    publish = nat_rules.rules_for(stages.build("publish").nat)
    assert {(r.table, r.chain, r.action) for r in publish} == {
        ("nat", "POSTROUTING", "MASQUERADE"), ("nat", "PREROUTING", "DNAT"), ("nat", "OUTPUT", "DNAT")}
    hairpin = nat_rules.rules_for(stages.build("hairpin").nat)
    guard = [r for r in hairpin if r.table == "raw"]
    assert guard == [nat_rules.Rule("raw", "PREROUTING", "DROP", daddr="127.0.0.0/8", in_if="!lo")]
    assert "iptables " + nat_rules.shell_words(guard[0].iptables()) == \
        "iptables -t raw -A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP"
    assert nat_rules.sysctls_for(stages.build("hairpin").nat) == {
        nat_rules.BRIDGE_NF: "0", "net.ipv4.conf.br0.route_localnet": "1"}
    assert nat_rules.sysctls_for(stages.build("publish").nat) == {nat_rules.BRIDGE_NF: "0"}
    assert nat_rules.sysctls_for(()) == {}
    assert len(hairpin) == len(set(hairpin))  # shared helper rules appear once


def test_nft_transaction_is_atomic_replace():
    batch = nftables.transaction(nat_rules.rules_for([MASQ, PUBLISHED]))["nftables"]
    verbs = [next(iter(c)) for c in batch]
    assert verbs[:4] == ["metainfo", "add", "delete", "add"]  # ensure, drop, recreate: one batch
    chains = [c["add"]["chain"]["name"] for c in batch if "chain" in c.get("add", {})]
    assert chains == ["postrouting", "prerouting", "output"]
    empty = nftables.transaction([])["nftables"]
    assert [next(iter(c)) for c in empty] == ["metainfo", "add", "delete"]
    json.dumps(batch)


@pytest.mark.parametrize("entries", [[MASQ], [MASQ, PUBLISHED, LOCAL],
                                     [PortMapping("10.0.2.15", 53, "172.18.0.20", 5353, "udp")]])
def test_parse_round_trip(entries):
    rules = nat_rules.rules_for(entries)
    for rule in rules:
        chain = nftables.CHAINS[(rule.table, rule.chain)][0]
        assert nftables.parse({"chain": chain, "expr": nftables.expressions(rule)}) == rule
        saved = [a + "/32" if a in ("10.0.2.15", "127.0.0.1", "172.18.0.10") else a
                 for a in rule.iptables()[2:]]  # as iptables-save prints it
        assert iptables.parse(rule.table, saved) == rule
    assert nat_rules.entries_from_rules(rules) == tuple(entries)


def test_parse_leaves_foreign_rules():
    assert iptables.parse("nat", ["-A", "POSTROUTING", "-m", "addrtype", "--src-type", "LOCAL",
                                  "-j", "MASQUERADE"]) is None
    assert nftables.parse({"chain": "postrouting", "expr": [{"log": {}}]}) is None
    assert nftables.parse({"chain": "other", "expr": [{"masquerade": None}]}) is None
    assert nat_rules.entries_from_rules(["-t nat -A X -j LOG"]) == ()


def test_records_round_trip():
    for entry in (MASQ, PUBLISHED):
        assert nat_rules.from_record(json.loads(json.dumps(nat_rules.to_record(entry)))) == entry


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, "80", 80.0, True, None])
def test_port_out_of_range(port):
    with pytest.raises(BadValue) as e:
        nat_rules.check_port(port)
    assert isinstance(e.value, LabkitError) and "1 to 65535" in str(e.value)
    with pytest.raises(BadValue):
        nat_rules.rules_for([PortMapping("10.0.2.15", port, "172.18.0.10", 80)])


@pytest.mark.parametrize("entry, error", [
    (PortMapping("10.0.2.15", 80, "172.18.0.10", 80, "sctp"), BadValue),
    (PortMapping("0.0.0.0", 80, "172.18.0.10", 80), BadAddress),
    (PortMapping("10.0.2.999", 80, "172.18.0.10", 80), BadAddress),
    (PortMapping("10.0.2.15", 80, "nowhere", 80), BadAddress),
    (Masquerade("172.18.0.0/33"), BadAddress),
    ("masquerade", BadValue),
])
def test_bad_entries(entry, error):
    with pytest.raises(error):
        nat_rules.check_entry(entry)


def test_unknown_backend():
    with pytest.raises(UnknownName, match="nftables or iptables"):
        nat.backend_module("pf")


@pytest.mark.parametrize("backend, tools, package", [
    ("nftables", ("nft",), "apt-get install nftables"),
    ("iptables", ("iptables", "iptables-save"), "apt-get install iptables"),
])
def test_missing_tool_names_the_package(tmp_path, monkeypatch, backend, tools, package):
    """(tests/test_nat.py: `up` refused before anything is made)"""
    path_without(tmp_path, monkeypatch, *tools)
    with pytest.raises(MissingTool, match=package):
        nat.check_backend(backend)
    from labkit.lab.journal import Journal
    # a stage without NAT never needs the tool
    assert nat.choose_backend(Journal("zz8"), backend, ()) == backend


def test_default_backend():
    from labkit.lab.journal import Journal
    assert nat.choose_backend(Journal("zz7"), None, ()) == "nftables"


def test_stage_services():
    assert stages.build("bridge").services == ()
    world = stages.build("outside").services
    assert [(s.namespace, s.address, s.port) for s in world] == [("world", plan.PUBLIC_SERVER, 80)]
    seed = [s for s in stages.build("publish").services if s.namespace == "netns0"]
    assert " ".join(seed[0].argv) == "python3 -m http.server --bind 172.18.0.10 5000"


def test_the_journal_and_lock_come_from_the_lab():
    """nat keeps its record in the journal it is given and holds the lock it is given: it
    takes a lab's name, never a Lab, and calls nothing of the lab layer above it."""
    import contextlib
    import inspect
    from labkit.lab import Lab
    from labkit.lab.journal import Journal
    assert nat.entries_of(Journal("zz6")) == () and nat.backend_of(Journal("zz6")) is None
    with pytest.raises(BadName, match="is not a lab name"):
        nat.host_namespace(Lab("zz6"))
    held = []

    @contextlib.contextmanager
    def lock():
        held.append("in")
        try:
            yield
        finally:
            held.append("out")
    with pytest.raises(UnknownName, match="is not up"):
        nat.apply("zz6", [MASQ], journal=Journal("zz6"), lock=lock())
    assert held == ["in", "out"] and not Journal("zz6").exists()
    for name in ("apply", "remove", "masquerade", "publish", "unpublish", "drift", "status_lines"):
        assert inspect.signature(getattr(nat, name)).parameters["journal"].default is inspect.Parameter.empty
    source = inspect.getsource(nat)
    assert "hasattr" not in source and ".writing" not in source


def test_backends_import_only_the_rule_model_and_the_tool_runner():
    import ast
    import pathlib
    for mod in (iptables, nftables):
        tree = ast.parse(pathlib.Path(mod.__file__).read_text())
        local = {n.module or a.name for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.level == 1 for a in n.names}
        assert local <= {"rules", "words", "tool"}, (mod.__name__, local)
