"""Notebook helpers, so each lesson cell stays a few calls long and its output repeats exactly.

    lesson.seed("veth")                         the seed's shell commands beside the labkit call
    lesson.sh(lab, "host", "ip route")          a command in a lab namespace, shown as in a terminal
    lesson.draw(lab)                            the live topology as a PNG
    lesson.reachability(lab, [("host", "172.18.0.10", True), ...])
                                                real pings / HTTP requests; AssertionError when
                                                reality differs from what the lesson expects
    lesson.watch(lab, points, ping=("host", "172.18.0.20")).show()
                                                a capture while something happens, as packet
                                                paths in text and as a ladder diagram
    lesson.check("two-veths-route", answer, lab)  an exercise: right, or a hint aimed at the mistake
    lesson.example("two-networks.toml")         the path of one of labkit's examples/

Everything a helper prints is deterministic on purpose (nbval compares stored outputs): no
timestamps, no ICMP ids or TCP sequence numbers, one line per distinct packet path (a repeated
ARP request or a retransmission is not counted), rows in a fixed order. Pictures are
`labkit.draw.figure.Figure`s: stored as PNG, which nbval does not compare, beside their text
form, which it does. Every helper that touches the kernel
checks privileges first, so without them (Binder) a cell prints one line, not a traceback.

Each helper lives in a module of its own (seed, shell, picture, probes, trace, traffic,
exercises); this module gathers them under one name, so a notebook imports only `lesson`.
"""
from __future__ import annotations

from ...model import plan
from .exercises import Verdict, check
from .picture import draw
from ...lab.reach import probe
from .probes import Probe, Reachability, reachability
from .seed import Commands, seed
from .shell import PROXY_VARIABLES, Shell, settle, sh
from .trace import Trace, describe, distinct
from .traffic import flush_neighbours, neighbour_syn, watch
from ..replay.course import example

__all__ = ["PROXY_VARIABLES", "Commands", "Probe", "Reachability", "Said", "Shell", "example",
           "Trace", "Verdict", "check", "describe", "distinct", "draw", "flush_neighbours",
           "gone", "neighbour_syn", "probe", "reachability", "seed", "settle", "sh", "watch"]


def gone(lab) -> str:
    """After `lab.down()`: assert that nothing of the lab is left (namespaces, journal)."""
    from ...lab import journal
    from ...kernel import netns
    roles = ("host", "world", *(plan.container(k) for k in range(4)))
    names = [plan.namespace_name(lab.name, r) for r in roles] + lab.journal.namespaces
    left = [n for n in names if netns.exists(n)]
    if lab.name in journal.labs() or left:
        raise AssertionError(f"the lab is not gone: namespaces {sorted(set(left))}, journal "
                             f"{'still there' if lab.name in journal.labs() else 'removed'}; "
                             "run lab.down() (or `sudo labkit clean`)")
    return Said("Nothing of the lab is left: no namespaces, no journal. "
                "(After a crash, `sudo labkit clean` removes what any lab left behind.)")


class Said(str):
    """A sentence shown as it is (no quotes) in a notebook."""

    def __repr__(self) -> str:
        return str(self)
