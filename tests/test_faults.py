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
}


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
    assert "look:" in hints and "fix:" not in hints          # level 1: where, not the answer
    assert "fix:" in broken.text(2)
    assert lab.drift() == [f"fault {name!r} is set: `labkit check {fault.stage} --lab {lab.name}` "
                           f"says what is left to do"]
    role, line = FIXES[name]
    code, out = run_line(lab, role, line)
    assert code == 0, out
    if name == "server-down":
        from labkit.lab import service
        poll(lambda: service.is_listening(lab.ns("netns0"), "172.18.0.10", 5000))
    fixed = lab.check(fault.stage)
    assert fixed.ok, f"{name}: {fixed.text(2)}"


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
