"""Hands-on: practice a stage, type the seed's commands, and check says whether it is done.

Every stage, typed with iptables as the seed writes it and (for the NAT stages) with nft;
then every single step left out, generated from the seed's steps: check must fail and name
what is missing. Traffic only between the lab's namespaces.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from labkit.errors import KernelError, UnknownName
from labkit.lab.practice import before
from labkit.model import plan, seed, stages

from seedtyping import run_line, type_steps

pytestmark = pytest.mark.kernel

NAT_STAGES = ("outside", "publish", "hairpin", "firewall", "names")   # nft words for each NAT step


@pytest.mark.parametrize("stage,tool", [(s, "iptables") for s in stages.STAGES]
                         + [(s, "nft") for s in NAT_STAGES])
def test_the_seeds_commands_typed_by_hand_make_check_pass(lab, stage, tool):
    task = lab.practice(stage, backend="nftables" if tool == "nft" else "iptables")
    assert task.steps and f"labkit check {stage} --lab {lab.name}" in str(task)
    first = lab.check(stage)
    assert not first.ok
    failed = type_steps(lab, stage, tool)
    assert failed == [], failed
    result = lab.check(stage)
    assert result.ok, result.text(2)
    assert lab.check().ok            # the stage practised is the default
    lab.down()
    assert lab.roles() == []


def expected_words(step: seed.Step) -> set[str]:
    """Words of a step that the check must name when the step is left out."""
    words = set(re.findall(r"\b(?:netns\d+|veth\d+|ceth\d+|br[01]|lo)\b", step.command))
    words |= set(re.findall(r"\bDOCKER[-A-Z0-9]*", step.command))     # the filter table's chains
    words |= {a.split("/")[0] for a in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", step.command)}
    for k in re.findall(r"netns delete netns(\d+)", step.command):   # its veth pair goes with it
        words |= {f"veth{k}", f"ceth{k}"}
    for key, said in (("ip_forward", "forward"), ("MASQUERADE", "source"), ("PREROUTING", "PREROUTING"),
                      ("OUTPUT", "OUTPUT"), ("http.server", "listens"),
                      ("route_localnet", "route_localnet"), ("-t raw", "moby#41872"),
                      ("127.0.0.0/8 -o br0", "masquerade of 127"), ("-P FORWARD DROP", "policy"),
                      ("dnsmasq", "listens"), ("resolv.conf", "resolv.conf")):
        if key in step.command:
            words.add(said)
    return words


OMISSIONS = [(stage, i) for stage in stages.STAGES for i in range(len(seed.STEPS[stage]))
             # hairpin's PREROUTING DNAT of 127.0.0.1 changes nothing a check can see: the raw
             # drop (moby#41872) stops every packet from the network to 127/8 before it
             if not (stage == "hairpin" and "PREROUTING -d 127.0.0.1" in seed.STEPS[stage][i].command)]


@pytest.mark.parametrize("stage,skip", OMISSIONS,
                         ids=[f"{s}-{i}-{seed.STEPS[s][i].command.split()[-1]}" for s, i in OMISSIONS])
def test_leaving_out_any_one_step_fails_check_and_names_it(lab, stage, skip):
    lab.practice(stage)
    type_steps(lab, stage, skip=skip)
    result = lab.check(stage)
    step = seed.STEPS[stage][skip]
    assert not result.ok, f"check passed without: {step.command}"
    said = " ".join(i.what for i in result.unmet)
    words = expected_words(step)
    assert any(w in said for w in words), (step.command, words, said)


def test_practice_journals_the_names_the_person_creates_and_down_removes_them(lab):
    lab.practice("bridge")
    names = [lab.journal.namespaces]
    assert plan.namespace_name(lab.name, "netns0") in names[0]
    run_line(lab, "host", f"ip netns delete {lab.name}-netns0")
    run_line(lab, "host", f"ip netns add {lab.name}-netns0")      # the person's, as the seed says
    lab.down()
    assert lab.roles() == []
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        f"{lab.name}-") == 0


def test_practice_refuses_a_namespace_it_did_not_make(lab):
    name = plan.namespace_name(lab.name, "netns0")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with pytest.raises(KernelError, match=f"{name}.*did not create"):
            lab.practice("veth")
        assert lab.roles() == []
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_practice_on_a_lab_that_is_up_converges(lab):
    lab.up("hairpin")
    lab.practice("outside")
    assert not lab.check("outside").ok and lab.check("bridge").ok
    lab.practice("outside")                    # again: the same start
    assert lab.check("bridge").ok


def test_the_start_of_each_stage_is_the_stage_before():
    assert [n.role for n in before("veth").namespaces] == ["host", "world"]
    assert before("bridge") == stages.build("two-veths")
    outside = before("outside")
    assert [s.namespace for s in outside.services] == ["world"] and outside.nat == ()


def test_check_without_a_stage_on_a_lab_that_is_down_says_which(lab):
    with pytest.raises(UnknownName, match="which stage"):
        lab.check()


def test_unknown_stage_lists_the_stages(lab):
    with pytest.raises(UnknownName, match="veth, two-veths, bridge"):
        lab.practice("bridges")


@pytest.mark.parametrize("stage", stages.STAGES)
def test_the_seeds_commands_typed_in_lab_cells_make_check_pass(lab, stage):
    """As in a notebook: one `%%lab ROLE` cell per run of steps typed in the same namespace
    (the bridge stage deletes and re-adds both containers in one host cell)."""
    import itertools

    from labkit.teach.notebook import magic
    lab.practice(stage)
    printed = []
    for where, group in itertools.groupby(seed.steps(stage, lab.name), key=lambda s: s.where):
        statuses = magic.run(where, "\n".join(s.command for s in group), lab=lab, write=printed.append)
        assert not any(statuses), "".join(printed)
    result = lab.check(stage)
    assert result.ok, result.text(2)


def test_the_magic_knows_which_lab_namespaces_a_line_deletes():
    from labkit.teach.notebook.magic import deleted_namespaces
    assert deleted_namespaces("sudo ip netns delete netns0", "") == ["netns0"]
    assert deleted_namespaces("ip netns del t1-netns1; ip netns delete other", "t1") == ["t1-netns1"]
    assert deleted_namespaces("ip -n x netns list", "") == []
