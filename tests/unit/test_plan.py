"""Naming, addressing and stage plans: pure data, no root."""
import ipaddress

import pytest

from labkit.model import plan
from labkit.model import stages
from labkit.errors import BadAddress, BadName, BadValue, LabkitError, UnknownName


def test_seed_addresses_are_kept_for_the_first_two_containers():
    assert plan.container_address(0) == "172.18.0.10"
    assert plan.container_address(1) == "172.18.0.20"
    assert plan.host_veth_address(0) == "172.18.0.11"
    assert plan.host_veth_address(1) == "172.18.0.21"


def test_address_plan_is_unique_inside_the_bridge_network_for_1000_containers():
    net = ipaddress.IPv4Network(plan.BRIDGE_NET)
    seen = set()
    for k in range(plan.MAX_CONTAINERS):
        for addr in (plan.container_address(k), plan.host_veth_address(k)):
            ip = ipaddress.IPv4Address(addr)
            assert ip in net and ip != net.network_address and ip != net.broadcast_address
            assert addr != plan.BRIDGE_ADDRESS
            assert addr not in seen
            seen.add(addr)


def test_macs_are_docker_style_and_deterministic():
    assert plan.mac_for("172.18.0.10/16") == "02:42:ac:12:00:0a"
    assert plan.mac_for(None, "host", "veth0") == plan.mac_for(None, "host", "veth0")
    assert plan.mac_for(None, "host", "veth0") != plan.mac_for(None, "host", "veth1")
    assert int(plan.mac_for(None, "host", "veth0").split(":")[0], 16) & 1 == 0  # unicast


@pytest.mark.parametrize("name", ["a" * 16, "has space", "sl/ash", "", "tab\tx"])
def test_bad_kernel_names_are_refused_with_the_reason(name):
    with pytest.raises(BadName) as info:
        plan.check_kernel_name(name)
    assert "name" in str(info.value)


def test_fifteen_characters_is_the_limit():
    assert plan.check_kernel_name("a" * 15) == "a" * 15
    with pytest.raises(BadName, match="at most 15"):
        plan.check_kernel_name("a" * 16)


@pytest.mark.parametrize("lab", ["toolong7", "UP", "a-b", "a b", "x/y"])
def test_bad_lab_names(lab):
    with pytest.raises(BadName, match="1 to 6 characters"):
        plan.check_lab_name(lab)


@pytest.mark.parametrize("cidr", ["172.18.0.10", "172.18.0.300/16", "172.18.0.10/33", "banana", "", None])
def test_bad_cidrs(cidr):
    with pytest.raises(BadAddress, match="prefix length"):
        plan.parse_cidr(cidr)


@pytest.mark.parametrize("n", [0, -1, 1001, 2.5, "3", True])
def test_container_count_out_of_range(n):
    with pytest.raises(BadValue):
        plan.check_containers(n)


def test_unknown_stage_lists_the_stages():
    with pytest.raises(UnknownName) as info:
        stages.build("bridges")
    for stage in stages.STAGES:
        assert stage in str(info.value)


def test_every_error_is_a_labkit_error():
    for cls in (BadAddress, BadName, BadValue, UnknownName):
        assert issubclass(cls, LabkitError)


def test_veth_stage_matches_the_seed():
    t = stages.build("veth")
    host, netns0 = t.namespace("host"), t.namespace("netns0")
    assert host.interface("veth0").addresses == ("172.18.0.11/16",)
    assert host.interface("veth0").peer == ("netns0", "ceth0")
    assert netns0.interface("ceth0").addresses == ("172.18.0.10/16",)
    assert t.namespace("netns1") is None
    assert host.interface("ens18").addresses == ("10.0.2.15/24",)
    assert t.namespace("world").interface("wan0").addresses == ("10.0.2.2/24",)


def test_bridge_stage_moves_the_addresses_to_br0():
    t = stages.build("bridge", "t1")
    host = t.namespace("host")
    assert host.interface("br0").addresses == ("172.18.0.1/16",)
    for k in (0, 1):
        assert host.interface(f"veth{k}").addresses == ()
        assert host.interface(f"veth{k}").master == "br0"
    assert t.namespace("netns0").routes == ()


def test_outside_adds_default_routes_forwarding_and_masquerade():
    t = stages.build("outside")
    assert all(ns.routes[0].gateway == "172.18.0.1" for ns in t.containers)
    assert ("net.ipv4.ip_forward", "1") in t.namespace("host").sysctls
    assert t.nat[0].source == "172.18.0.0/16" and t.nat[0].not_out == "br0"


def test_containers_beyond_the_seed_get_planned_addresses():
    t = stages.build("bridge", containers=30)
    assert len(t.containers) == 30
    assert t.namespace("netns29").interface("ceth29").addresses == ("172.18.1.50/16",)
    assert len(t.addresses()) == 30 + 4  # containers, br0, ens18, wan0, 203.0.113.80


def test_longest_namespace_name_fits():
    assert plan.namespace_name("abcdef", "netns999") == "abcdef-netns999"
    with pytest.raises(BadName):
        plan.namespace_name("abcdefg", "netns999")


def test_ipv6_sysctls_do_not_apply_on_a_kernel_booted_without_ipv6(tmp_path, monkeypatch):
    """ipv6.disable=1 removes /proc/sys/net/ipv6: labs must still come up (IPv6 is off anyway)."""
    from labkit.kernel import sysctl
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    monkeypatch.setattr(sysctl, "PROC_SYS", str(tmp_path))
    assert not sysctl.applies("net.ipv6.conf.all.disable_ipv6")
    assert sysctl.applies("net.ipv4.ip_forward")
    assert sysctl.write("no-such-namespace", "net.ipv6.conf.all.disable_ipv6", "1") is None
    (tmp_path / "net" / "ipv6").mkdir()
    assert sysctl.applies("net.ipv6.conf.all.disable_ipv6")


def test_each_stage_is_built_from_the_one_before_it_and_the_first_from_nothing():
    from labkit.model import stages
    assert stages.previous("veth") is None
    assert stages.lineage("publish") == ("veth", "two-veths", "bridge", "outside", "publish")
    assert stages.includes("hairpin", "outside") and not stages.includes("outside", "publish")
    assert stages.later("publish") == ("publish", "hairpin", "firewall", "isolated", "ipv6", "ipv6-routed")
    assert "names" not in stages.later("publish") and stages.previous("names") == "outside"
    assert stages.previous("overlay") is None  # a lab of its own shape (two hosts), its own root
    for stage in stages.STAGES:          # every chain ends at a first stage, in course order
        line = stages.lineage(stage)
        assert line[0] in ("veth", "overlay") and line[-1] == stage
        assert list(line) == sorted(line, key=stages.STAGES.index)


def test_an_unknown_stage_is_named_with_the_known_ones():
    from labkit.errors import UnknownName
    from labkit.model import stages
    with pytest.raises(UnknownName, match="unknown stage 'firewal'.*publish"):
        stages.lineage("firewal")
