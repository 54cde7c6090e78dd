"""Your turn: the lab brought to where a stage starts, for a person to type the stage's commands.

`practice(lab, stage)` converges the lab to the state before `stage` (the world and the host
for `veth`; the previous stage otherwise, with the world's server when the stage needs it),
journals first every namespace the person is expected to create (so `down` removes what
they make under those names, never anything found by pattern), writes those namespaces'
hosts and resolv.conf (a server started there resolves at once), and returns the task: the
seed's steps, where to type each one, then `labkit check STAGE`. A namespace of that name
that the lab did not make is refused, named, never taken over.

With `challenge`, the task is the goal instead of the commands: the stage in words, its
target drawn (what the stage adds marked), and what check will test (labkit.lab.check.goals);
hints then come from check, at three levels (where to look, what kind of change, the command).
"""
from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass

from ..errors import KernelError
from ..kernel import netns
from ..model import plan, seed, stages
from ..model.topology import Topology
from . import etcfiles, misplaced
from . import names as resolvers
from .verdict import Words


@dataclass(frozen=True)
class Task:
    """The stage to build by hand: its steps (or, in a challenge, its goals), in the lab's
    names, and how to check it."""
    stage: str
    lab: str
    steps: tuple[seed.Step, ...]
    challenge: bool = False
    goals: tuple[str, ...] = ()
    start: Topology | None = None       # where the practice starts (the drawing marks what is new)

    def text(self) -> str:
        """The task as a terminal shows it: one block per place to type, then the check."""
        if self.challenge:
            return self._challenge_text()
        flag = f" --lab {self.lab}" if self.lab else ""
        words = Words(self.lab)
        out = [f"Your turn: build stage {self.stage!r} ({stages.DESCRIPTIONS[self.stage]}).",
               "Type each command in a shell in the namespace named above it:"]
        where = None
        for step in self.steps:
            if step.where != where:
                where = step.where
                out.append(f"  # {words.where(where)}")
                out.append(f"  #   or {words.labkit_shell(where)}: its prompt says {words.prompt(where)}")
            note = "" if step.seed else "   # labkit's lab: not in the seed"
            out.append(f"  {step.command}{note}")
        out.append(f"At your own prompt a command changes {misplaced.machine_words()[0]}, not the "
                   f"lab's: labkit check says where such a command went.")
        out.append(f"Then: labkit check {self.stage}{flag}   (a hint: labkit check {self.stage}{flag} --fix)")
        return "\n".join(out)

    def _challenge_text(self) -> str:
        flag = f" --lab {self.lab}" if self.lab else ""
        words = Words(self.lab)
        places = sorted({step.where for step in self.steps}, key=[s.where for s in self.steps].index)
        out = [f"Your turn, as a challenge: build stage {self.stage!r} "
               f"({stages.DESCRIPTIONS[self.stage]}).",
               "No commands this time: the goal is drawn below (what the stage adds marked).",
               f"Check will test {len(self.goals)} things:"]
        out += [f"  - {goal}" for goal in self.goals]
        out.append("Type in a shell in each namespace you change ("
                   + "; ".join(f"{words.labkit_shell(p)}" for p in places) + ").")
        out.append(f"Then: labkit check {self.stage}{flag}. Stuck? --hint says where to look, "
                   f"--hint 2 what kind of change, --fix the command "
                   f"(lab.hint({self.stage!r}, 1 | 2 | 3)).")
        out.append(f"Every command, as a guided task: labkit practice {self.stage}{flag} "
                   f"(lab.practice({self.stage!r}, challenge=False))")
        return "\n".join(out)

    @property
    def target(self) -> Topology:
        """The stage's plan for this lab: what the goal's drawing shows."""
        return stages.build(self.stage, self.lab)

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f'<pre class="labkit-task">{html.escape(self.text())}</pre>'

    def _ipython_display_(self) -> None:
        """In a notebook: the text, then (in a challenge) the goal drawn as its own output."""
        from IPython.display import display
        display({"text/plain": self.text(), "text/html": self._repr_html_()}, raw=True)
        if self.challenge and GOAL_DRAWER is not None:
            display(GOAL_DRAWER(self.target, self.start))


# draws a challenge's goal: (target, start) -> a figure with what the stage adds marked; set by
# the layers above that draw (labkit.teach.notebook), since this layer draws nothing itself
GOAL_DRAWER = None


def before(stage: str, lab: str = "") -> Topology:
    """Where `stage` starts: the previous stage's plan (the world and the host alone for
    `veth`), with the world's server if `stage` has it (it is the scene, not the task)."""
    earlier = stages.previous(stage)
    target = stages.build(stage, lab)
    if earlier is None:
        start = dataclasses.replace(target, namespaces=tuple(
            dataclasses.replace(n, interfaces=tuple(
                itf for itf in n.interfaces if not (itf.peer and plan.container_index(itf.peer[0]) is not None)))
            for n in target.namespaces if n.kind != "container"), nat=(), services=())
    else:
        start = stages.build(earlier, lab)
    if stage == "overlay":                 # a lab of its own shape: the underlay and two hosts
        from ..model import overlay
        start = overlay.start(target)
    if stages.includes(stage, "ipv6") and not stages.includes(earlier, "ipv6"):
        start = dataclasses.replace(start, namespaces=tuple(   # the world's IPv6 is the scene
            target.namespace("world") if n.role == "world" else n for n in start.namespaces))
    if stages.includes(stage, "ipv6"):
        from ..model import six
        closed = tuple(s for s in target.services if s.port == six.UNPUBLISHED_PORT and s not in start.services)
        if closed:                         # the unpublished server too: the scene of the routed mode
            start = dataclasses.replace(start, stage=stages.before_name(stage), services=start.services + closed)
    world = tuple(s for s in target.services if s.namespace == "world" and s not in start.services)
    if world or earlier is None:
        start = dataclasses.replace(start, stage=stages.before_name(stage), services=start.services + world)
    return start


def practice(lab, stage: str, backend: str | None = "iptables", challenge: bool = False) -> Task:
    """Bring `lab` to where `stage` starts and return the task (see the module docstring).

    `backend` is the NAT tool of what labkit sets up before (iptables: the seed's, so
    `iptables -t nat -S` shows every rule); None keeps the lab's own. Holds the lab's lock."""
    before(stage, lab.name)  # a bad stage is said at once, not after waiting for the lock
    with lab.writing():
        task = _practice(lab, stage, backend)
    if not challenge:
        return task
    from .check import goals
    start = before(stage, lab.name)
    return dataclasses.replace(task, challenge=True, start=start,
                               goals=tuple(goals(stage, start, lab.name)))


def _practice(lab, stage: str, backend: str | None) -> Task:
    start = before(stage, lab.name)
    names = [plan.namespace_name(lab.name, role) for role in seed.NEW_NAMESPACES.get(stage, ())]
    journal = lab.journal
    foreign = [n for n in names if n not in journal.namespaces and netns.exists(n)]
    if foreign:
        raise KernelError(f"namespace(s) {', '.join(foreign)} exist but lab {lab.name or '(default)'!r} "
                          f"did not create them; to practise {stage!r} you create them yourself: "
                          f"delete them if they are yours to lose "
                          f"({'; '.join(f'sudo ip netns delete {n}' for n in foreign)}) or use "
                          f"another lab name (--lab NAME)")
    lab.up(start.stage if start.stage in stages.STAGES else start, backend=backend)
    journal = lab.journal
    journal.expect_namespaces(names)
    etcfiles.write_resolver(stages.build(stage, lab.name), journal)
    if stages.includes(stage, "names"):        # the person points each container at 127.0.0.11
        resolvers.unpointed(stages.build(stage, lab.name), lab.places.etc_dir, etcfiles.RESOLV_CONF)
    records = {"practice": stage, "fault": None}
    if journal.get(misplaced.MACHINE_RECORD) is None:   # the first practice's: slips stay slips
        records[misplaced.MACHINE_RECORD] = misplaced.snapshot(
            lab.name, journal.namespaces, rules=stage in ("outside", "publish", "hairpin"))
    journal.update(records)
    return Task(stage, lab.name, seed.steps(stage, lab.name))
