"""Property-based bad input over the public API and the CLI: only LabkitError, never a traceback
from inside, never a half-made lab."""
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labkit.model import plan
from labkit.model import stages
from labkit.errors import LabkitError

names = st.one_of(st.text(max_size=20), st.sampled_from(["", "t1", "abcdef", "abcdefg", "a b", "../x"]))
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
counts = st.one_of(st.integers(min_value=-5, max_value=2000), anything)
INPUTS: dict[str, int] = {}  # inputs tried per test, printed by the last test (-s)


def count(what: str) -> None:
    INPUTS[what] = INPUTS.get(what, 0) + 1


@settings(max_examples=300, deadline=None)
@given(lab=names, stage=st.one_of(st.sampled_from(stages.STAGES), st.text(max_size=12)), n=counts)
def test_building_a_plan_accepts_or_raises_labkit_error(lab, stage, n):
    count("plans")
    try:
        topology = stages.build(stage, lab, n)
    except LabkitError as e:
        assert str(e)
        return
    assert len(topology.containers) == (stages.default_containers(stage) if n is None else n)
    for ns in topology.namespaces:
        plan.check_kernel_name(plan.namespace_name(lab, ns.role), "namespace")
        for itf in ns.interfaces:
            plan.check_kernel_name(itf.name)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=24), st.from_regex(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", fullmatch=True)))
def test_cidr_parsing(text):
    count("CIDRs")
    try:
        parsed = plan.parse_cidr(text)
    except LabkitError as e:
        assert "write it like" in str(e)
    else:
        assert str(parsed) == text or parsed.ip.version == 4


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=20), anything))
def test_kernel_names(name):
    count("kernel names")
    try:
        ok = plan.check_kernel_name(name)
    except LabkitError:
        return
    assert 1 <= len(ok) <= 15 and "/" not in ok and not any(c.isspace() for c in ok)


@pytest.mark.kernel
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(st.one_of(st.sampled_from(["up", "up", "down", "status", "exec", "--lab", "--containers",
                                                 "--backend", "--backend", "--json", "veth", "bridge",
                                                 "outside", "publish", "hairpin", "0", "5000", "65536",
                                                 "netns0", "--", "-1", "nftables", "iptables", "pf",
                                                 "x" * 16, "a b"]),
                               st.text(alphabet="abcxyz019-/ ", max_size=8)), max_size=6))
def test_cli_never_shows_a_traceback(tmp_path_factory, args):
    """Random command lines: exit 0, 1 or 2 with a message; no traceback; nothing half-made."""
    if args and args[0] == "up":
        args = [*args, "--lab", "tprop"]  # anything valid goes into one lab, removed below
    run_dir = tmp_path_factory.mktemp("run")
    env = {**os.environ, "LABKIT_RUN_DIR": str(run_dir)}
    count("command lines")
    result = subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                            env=env, timeout=60, stdin=subprocess.DEVNULL)
    from labkit.kernel import netns
    if result.returncode != 0:            # refused: nothing half-made, before any clean
        assert not [n for n in netns.names() if n.startswith("tprop-")], (args, result.stderr)
        assert not os.listdir(run_dir), (args, os.listdir(run_dir))
    subprocess.run([sys.executable, "-m", "labkit", "clean"], env=env, capture_output=True, timeout=60)
    assert "Traceback" not in result.stderr, (args, result.stderr)
    assert result.returncode in (0, 1, 2, 127), (args, result.returncode, result.stderr)
    assert not [n for n in netns.names() if n.startswith("tprop-")]


# -- NAT: entries, rules and commands (no root) ----------------------------------------------------

from labkit.nat import api as nat  # noqa: E402
from labkit.nat import rules as nat_rules  # noqa: E402
from labkit.model import Masquerade, PortMapping  # noqa: E402

ports = st.one_of(st.integers(min_value=-2, max_value=70000), st.sampled_from([0, 1, 5000, 65535, 65536]),
                  st.booleans(), st.floats(allow_nan=True), st.text(max_size=6), st.none())
addresses = st.one_of(st.sampled_from(["10.0.2.15", "127.0.0.1", "127.3.4.5", "0.0.0.0", "255.255.255.255",
                                       "224.0.0.1", "10.0.2.255", "203.0.113.80", "172.18.0.10", "::1",
                                       "10.0.2.15/24", " 10.0.2.15", "10.0.2.015"]),
                      st.ip_addresses(v=4).map(str), st.text(max_size=16), st.integers(), st.none())
protos = st.one_of(st.sampled_from(["tcp", "udp", "icmp", "TCP", ""]), st.text(max_size=4), st.none())
backends = st.one_of(st.sampled_from([*nat.BACKENDS, "pf", "nft", "iptables-legacy", ""]),
                     st.text(max_size=10), st.none(), st.integers())
containers = st.one_of(st.sampled_from(["netns0", "netns1", "netns2", "netns00", "netns-1", "world",
                                        "host", "netns999", "netns" + "9" * 20, ""]),
                       st.text(max_size=12), st.integers(), st.none())


@settings(max_examples=400, deadline=None)
@given(address=addresses, port=ports, to_address=addresses, to_port=ports, proto=protos,
       source=st.one_of(addresses, st.sampled_from(["172.18.0.0/16", "10.0.0.0/8", "1.2.3.4/33"])),
       not_out=st.one_of(st.none(), st.sampled_from(["br0", "a b", "x" * 16, ""]), st.text(max_size=17)),
       tool=st.one_of(st.sampled_from(["iptables", "nft", "both"]), st.text(max_size=6)))
def test_nat_entries_rules_and_commands(address, port, to_address, to_port, proto, source, not_out, tool):
    """Any entry either is refused with a LabkitError or gives rules and commands in both tools."""
    count("NAT entries")
    from labkit.nat import _nftables as nftables
    for entry in (PortMapping(address, port, to_address, to_port, proto), Masquerade(source, not_out)):
        try:
            nat_rules.check_entry(entry)
        except LabkitError as e:
            assert str(e)
            continue
        rules = nat_rules.rules_for([entry])
        assert rules and all(r.iptables()[:2] == ["-t", r.table] for r in rules)
        assert nftables.transaction(rules)["nftables"]
        try:
            lines = nat_rules.commands([entry], tool, namespace="t1-host")
        except LabkitError as e:
            assert tool not in ("iptables", "nft", "both") and "choose" in str(e)
        else:
            assert all(line.startswith("ip netns exec t1-host ") for line in lines)


@settings(max_examples=200, deadline=None)
@given(name=backends)
def test_nat_backend_names(name):
    count("backend names")
    try:
        module = nat.backend_module(name)
    except LabkitError as e:
        assert "choose nftables or iptables" in str(e)
    else:
        assert name in nat.BACKENDS and module.TOOL in ("nft", "iptables")


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(names, anything, st.builds(object)))
def test_lab_names_in_the_api(name):
    """Lab(...) and the NAT functions take a lab name (NAT: with its journal); anything else
    is a LabkitError."""
    count("lab names")
    from labkit import Lab
    for call in (lambda: Lab(name), lambda: nat.host_namespace(name)):
        try:
            call()
        except LabkitError as e:
            assert str(e)


# -- NAT on a live lab, both backends: refused input changes nothing ----------------------------

def _nat_state(lab):
    journal = lab.journal
    return nat.live_rules(lab.name), nat.entries_of(journal), journal.get("nat_backend"), lab.stage


@pytest.mark.kernel
@pytest.mark.parametrize("backend", nat.BACKENDS)
def test_publish_and_unpublish_any_input(lab, backend):
    """publish/unpublish with any arguments: a LabkitError and no change, or exactly the
    mapping asked for (then taken back, leaving the rules as they were)."""
    lab.up("publish", backend=backend)
    before = _nat_state(lab)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(container=containers, port=ports, to_port=st.one_of(st.none(), ports), address=addresses,
           proto=st.one_of(st.just("tcp"), protos), unpublish=st.booleans())
    def attempt(container, port, to_port, address, proto, unpublish):
        count(f"publish/unpublish ({backend})")
        try:
            if unpublish:
                gone = lab.unpublish(port, address=address, proto=proto)
                assert gone is None or gone in lab.plan("publish").nat
                if gone is not None:          # the stage's own mapping: put it back
                    lab.up("publish")
                return
            entry = lab.publish(container, port, to_port=to_port, address=address, proto=proto)
        except LabkitError as e:
            assert str(e) and type(e).__name__ != "LabkitError"
            assert _nat_state(lab) == before, "a refused call changed the lab"
            return
        assert entry in nat.entries_of(lab.journal)
        entries = nat.entries_of(lab.journal)
        assert set(nat.read(lab.name, journal=lab.journal)[1]) == set(entries)  # the kernel holds it
        if entry not in before[1]:
            assert lab.unpublish(entry.port, address=entry.address, proto=entry.proto) == entry
        assert _nat_state(lab) == before

    attempt()
    assert PAGE_OK(lab)


def PAGE_OK(lab) -> bool:
    return "Hello from netns0" in lab.exec("world", ["curl", "-sS", "--noproxy", "*", "-m", "3",
                                                      "http://10.0.2.15:5000/"]).stdout


@pytest.mark.kernel
def test_up_with_bad_arguments_changes_nothing(lab):
    """Lab.up with any bad stage, container count or backend: a LabkitError before any change."""
    lab.up("publish", backend="iptables")
    before = (_nat_state(lab), lab.journal.data, lab.inspect())

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stage=st.one_of(st.sampled_from(stages.STAGES), st.text(max_size=10), st.none(), st.integers()),
           n=st.one_of(st.none(), st.integers(min_value=1, max_value=3), counts),
           backend=backends)
    def attempt(stage, n, backend):
        valid = (stage in stages.STAGES and (n is None or (type(n) is int and 1 <= n <= 1000))
                 and backend in (None, "", *nat.BACKENDS))
        assume(not valid)
        count("Lab.up")
        with pytest.raises(LabkitError) as caught:
            lab.up(stage, n, backend=backend)
        assert str(caught.value)
        assert (_nat_state(lab), lab.journal.data) == before[:2]

    attempt()
    assert lab.inspect() == before[2]


def test_zz_report_inputs_tried():
    """Not a check: prints how many inputs the property tests above tried (run with -s)."""
    print(f"\nproperty inputs tried: {INPUTS}, total {sum(INPUTS.values())}")
