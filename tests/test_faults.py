"""Broken labs: each fault makes check fail; the fix a person types makes it pass again."""
from __future__ import annotations


import pytest

from labkit.errors import BadValue, UnknownName
from labkit.lab import faults
from labkit.model import stages

from seedtyping import poll, run_line

# the fix a person types for each fault: (namespace, shell line)
FIXES = {
    "ceth-down": ("netns0", "ip link set ceth0 up"),
    "lo-down": ("netns0", "ip link set lo up"),
    "wrong-address": ("netns0", "ip addr del 172.19.0.10/16 dev ceth0; ip addr add 172.18.0.10/16 dev ceth0"),
    "port-not-on-bridge": ("host", "ip link set veth1 master br0"),
    "bridge-down": ("host", "ip link set br0 up"),
    "no-default-route": ("netns0", "ip route add default via 172.18.0.1"),
    "no-forwarding": ("host", "sysctl -w net.ipv4.ip_forward=1"),
    "no-masquerade": ("host", "iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE"),
    "no-prerouting-dnat": ("host", "iptables -t nat -A PREROUTING -d 10.0.2.15 -p tcp --dport 5000 "
                                   "-j DNAT --to-destination 172.18.0.10:5000"),
    "no-output-dnat": ("host", "iptables -t nat -A OUTPUT -d 10.0.2.15 -p tcp --dport 5000 "
                               "-j DNAT --to-destination 172.18.0.10:5000"),
    "server-down": ("netns0", "python3 -m http.server --bind 172.18.0.10 5000 >/dev/null 2>&1 &"),
    "br-netfilter-drop": ("host", "iptables -P FORWARD ACCEPT"),
    "no-hairpin": ("host", "iptables -t nat -A POSTROUTING -s 172.18.0.0/16 -d 172.18.0.10 -o br0 "
                           "-p tcp --dport 5000 -m conntrack --ctstate DNAT -j MASQUERADE"),
    # layers the faults above do not reach; a list: lines typed one after the other
    "same-mac": [("netns1", "ip link set ceth1 address 02:42:ac:12:00:14"),
                 ("host", "ip neigh flush dev br0"), ("netns0", "ip neigh flush dev ceth0")],
    "stray-route": ("host", "ip route del 172.18.0.20/32 dev veth0"),
    "wrong-neighbour": ("host", "ip neigh del 172.18.0.20 dev br0"),
    "forward-drop": ("host", "iptables -D FORWARD -o br0 -j DROP"),
    # the stages after publish and outside (issue 23)
    "no-established": ("host", "iptables -A FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
    "no-published-accept": ("host", "iptables -A DOCKER -d 172.18.0.10 ! -i br0 -o br0 -p tcp --dport 5000 "
                                    "-m conntrack --ctstate DNAT -j ACCEPT"),
    "forward-accept": ("host", "iptables -P FORWARD DROP"),
    "no-isolation": ("host", "iptables -I FORWARD 2 -j DOCKER-ISOLATION-STAGE-1"),
    "resolver-down": ("netns0", "dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --user=root --group= --pid-file= "
                                "--bind-interfaces --listen-address=127.0.0.11 --port=10053 --server=10.0.2.2 "
                                "--host-record=netns0,172.18.0.10 --host-record=netns1,172.18.0.20"),
    "resolv-conf-elsewhere": ("netns0", "echo nameserver 127.0.0.11 > /etc/resolv.conf"),
    "no-resolver-dnat": ("netns0", "iptables -t nat -A OUTPUT -d 127.0.0.11 -p udp --dport 53 -j DNAT "
                                   "--to-destination 127.0.0.11:10053"),
    "dnat-wrong-port": ("host", "iptables -t nat -D PREROUTING -d 10.0.2.15/32 -p tcp -m tcp --dport 5000 "
                                "-j DNAT --to-destination 172.18.0.10:5001; iptables -t nat -A PREROUTING "
                                "-d 10.0.2.15 -p tcp --dport 5000 -j DNAT --to-destination 172.18.0.10:5000"),
    # beyond the seed: IPv6 and the overlay
    "no-forwarding6": ("host", "sysctl -w net.ipv6.conf.all.forwarding=1"),
    "no-nat66": ("host", "ip6tables -t nat -A POSTROUTING -s fd00:172:18::/64 ! -o br0 -j MASQUERADE"),
    "no-default-route6": ("netns0", "ip -6 route add default via fd00:172:18::1"),
    "no-return-route": ("world", "ip -6 route add fd00:172:18::/64 via 2001:db8:2::15"),
    "mtu-1500": [("netns0", "ip link set ceth0 mtu 1450"), ("netns1", "ip link set ceth1 mtu 1450")],
    "no-flood-entry": ("host-a", "bridge fdb append 00:00:00:00:00:00 dev vxlan42 dst 10.0.3.2"),
    "wrong-vni": ("host-b", "ip link del vxlan42; ip link add vxlan42 type vxlan id 42 dstport 4789 "
                            "local 10.0.3.2 nolearning; ip link set vxlan42 mtu 1450; ip link set "
                            "vxlan42 master br0; ip link set vxlan42 up; bridge fdb append "
                            "00:00:00:00:00:00 dev vxlan42 dst 10.0.3.1"),
    "vxlan-port-dropped": ("host-b", "iptables -D INPUT -p udp --dport 4789 -j DROP"),
}
DOUBLES = [name for name in faults.FAULTS if "+" in name]
for _double in DOUBLES:                 # a double fault: the fixes of its two parts
    FIXES[_double] = [line for part in _double.split("+")
                      for line in (FIXES[part] if isinstance(FIXES[part], list) else [FIXES[part]])]


def fix_lines(name: str) -> list[tuple[str, str]]:
    return FIXES[name] if isinstance(FIXES[name], list) else [FIXES[name]]


def type_fix(lab, name: str) -> None:
    """Type fault `name`'s fix as a person would (waiting for a server started by hand)."""
    for role, line in fix_lines(name):
        code, out = run_line(lab, role, line)
        assert code == 0, f"{line}: {out}"
    if "server-down" in name.split("+"):
        from labkit.lab import service
        assert poll(lambda: service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000))


def test_every_fault_has_a_fix_here():
    assert set(FIXES) == set(faults.FAULTS)


@pytest.mark.kernel
@pytest.mark.parametrize("name", list(faults.FAULTS))
def test_a_fault_fails_check_and_the_hand_fix_makes_it_pass(lab, name):
    fault = faults.FAULTS[name]
    lab.up(fault.stage, fault=name)
    broken = lab.check(fault.stage)
    assert not broken.ok, f"{name}: check passed on the broken lab"
    hints = broken.text(1)
    assert "look:" in hints and "change:" not in hints and "fix:" not in hints  # level 1: where
    assert "change:" in broken.text(2) and "fix:" not in broken.text(2)   # level 2: what kind
    assert "fix:" in broken.text(3)
    assert lab.drift() == [f"fault {name!r} is set: `labkit check {fault.stage} --lab {lab.name}` "
                           f"says what is left to do"]
    type_fix(lab, name)
    fixed = lab.check(fault.stage)
    assert fixed.ok, f"{name}: {fixed.text(3)}"


@pytest.mark.kernel
def test_down_after_a_half_done_fix_leaves_nothing_and_a_fault_converges_over_a_lab_that_is_up(lab):
    lab.up("hairpin")
    lab.up("publish", fault="no-output-dnat")
    run_line(lab, "host", "iptables -t nat -A OUTPUT -d 10.0.2.15 -p tcp --dport 9 -j DNAT "
                          "--to-destination 172.18.0.10:9")          # a wrong try
    assert not lab.check("publish").ok
    lab.up("bridge", fault="br-netfilter-drop")
    assert not lab.check("bridge").ok
    lab.up("bridge")                                                   # no fault: back to the stage
    assert lab.check("bridge").ok
    assert lab.drift() == [                     # labkit never removes what a person made
        "host: NAT rule not part of the stage (iptables): iptables -t nat -A OUTPUT -d 10.0.2.15 "
        "-p tcp -m tcp --dport 9 -j DNAT --to-destination 172.18.0.10:9"]
    lab.down()
    assert lab.roles() == []


def test_unknown_fault_lists_the_faults():
    with pytest.raises(UnknownName, match="ceth-down, lo-down"):
        faults.fault("cable-cut")


def test_a_fault_that_does_not_apply_to_the_stage_says_which_it_breaks():
    with pytest.raises(BadValue, match="does not apply to stage 'veth'.*outside"):
        faults.fault("no-masquerade", "veth")


def test_the_listing_names_each_fault_its_stage_and_symptom():
    lines = faults.listing()
    assert len(lines) == len(faults.FAULTS)
    assert any(line.startswith("no-forwarding") and "outside" in line for line in lines)
    assert all(f.stage in stages.STAGES for f in faults.FAULTS.values())


@pytest.mark.kernel
def test_check_names_the_masquerade_by_its_rule_not_by_a_missing_answer(lab):
    """Forwarding off with the MASQUERADE there: check blames forwarding, not the rule; the
    rule missing is said as missing, with the seed's line; the same rule typed in nft counts."""
    lab.up("outside", fault="no-forwarding")
    said = {i.what: i for i in lab.check("outside").items}
    there = "a MASQUERADE of 172.18.0.0/16 in nat POSTROUTING rewrites the source of packets leaving ens18"
    assert said[there].ok and not any("MASQUERADE?" in s for s in said)
    unread = [i for s, i in said.items() if s.startswith("netns0 gets no answer from the public server")]
    assert unread and not unread[0].ok and not unread[0].fix
    lab.up("outside", fault="no-masquerade")
    missing = {i.what: i for i in lab.check("outside").items}[
        "nothing rewrites the source of packets leaving ens18 (no MASQUERADE of 172.18.0.0/16 in nat POSTROUTING)"]
    assert not missing.ok and missing.fix.endswith(FIXES["no-masquerade"][1])
    code, out = run_line(lab, "host", "nft add table ip mine; nft add chain ip mine post '{ type nat hook "
                                      "postrouting priority 100; }'; nft add rule ip mine post ip saddr "
                                      "172.18.0.0/16 oifname != br0 masquerade")
    assert code == 0, out
    assert lab.check("outside").ok
    code, out = run_line(lab, "host", "iptables -t nat -S POSTROUTING")  # check read, loaded nothing
    assert code == 0 and "legacy tables present" not in out, out


def test_the_new_faults_and_the_doubles_are_there():
    new = {"same-mac", "stray-route", "wrong-neighbour", "forward-drop", "dnat-wrong-port"}
    assert new <= set(faults.FAULTS) and len(DOUBLES) >= 2
    old_layers = {"links", "addresses", "routes", "forwarding", "nat", "servers", "netfilter"}
    assert {faults.FAULTS[n].layer for n in new} - old_layers >= {"ethernet", "neighbours", "filter"}
    for name in DOUBLES:
        a, b = name.split("+")
        assert faults.FAULTS[name].layer == f"{faults.FAULTS[a].layer}+{faults.FAULTS[b].layer}"


@pytest.mark.kernel
@pytest.mark.parametrize("name", DOUBLES)
def test_a_double_fault_needs_both_fixes(lab, name):
    fault = faults.FAULTS[name]
    for part in name.split("+"):
        lab.down()                      # a server started by hand outlives an `up`
        lab.up(fault.stage, fault=name)
        for role, line in fix_lines(part):
            code, out = run_line(lab, role, line)
            assert code == 0, f"{line}: {out}"
        if part == "server-down":
            from labkit.lab import service
            assert poll(lambda: service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000))
        half = lab.check(fault.stage)
        assert not half.ok, f"{name}: the fix of {part} alone made check pass"
    lab.down()
    lab.up(fault.stage, fault=name)
    type_fix(lab, name)
    assert lab.check(fault.stage).ok
