"""The seed's shell commands for each stage, beside the one labkit call that does the same.

`seed(stage)` needs no root and runs nothing: it returns `Commands`, shown as text in a
terminal and as a two-column table in a notebook. The commands are labkit.model.seed's steps
(what `practice` asks a person to type, and what `check` names as fixes: one copy). From
`outside` on, the NAT commands labkit adds beyond them follow in iptables' words, taken from
labkit.nat (so they never drift)."""
from __future__ import annotations

import html
from dataclasses import dataclass

from ...model.seed import steps

_NETNS = "in {ns} (sudo nsenter --net=/var/run/netns/{ns} bash)"


def blocks(stage: str) -> tuple[tuple[str, str], ...]:
    """The seed's steps of `stage` (labkit.model.seed) as (where, commands) blocks: one block
    for each run of steps typed in the same place."""
    out: list[tuple[str, list[str]]] = []
    for step in steps(stage):
        where = "on the host" if step.where == "host" else _NETNS.format(ns=step.where)
        where += "" if step.seed else " (not in the seed)"
        if out and out[-1][0] == where:
            out[-1][1].append(step.command)
        else:
            out.append((where, [step.command]))
    return tuple((where, "\n".join(lines)) for where, lines in out)


@dataclass(frozen=True)
class Commands:
    """Shell commands beside the labkit call that does the same; text, or a two-column table."""
    stage: str
    blocks: tuple[tuple[str, str], ...]
    call: str
    note: str = ""

    def __str__(self) -> str:
        out = [f"The seed's commands for stage {self.stage!r}"
               + (f" ({self.note})" if self.note else "") + ":"]
        for where, text in self.blocks:
            out.append(f"  # {where}")
            out += [f"  {line}" for line in text.splitlines()]
        out.append(f"labkit does the same from any state, in one call:  {self.call}")
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        shell = "\n".join(f"# {where}\n{text}" for where, text in self.blocks)
        note = f"<br><small>{html.escape(self.note)}</small>" if self.note else ""
        pre = '<pre style="font-family:monospace;text-align:left;margin:0">'
        cell = '<td style="text-align:left;vertical-align:top">'
        return ('<table class="labkit-commands"><thead><tr><th style="text-align:left">'
                f"the seed's shell commands (stage {html.escape(self.stage)}){note}</th>"
                '<th style="text-align:left">labkit</th></tr></thead><tbody><tr>'
                f"{cell}{pre}{html.escape(shell)}</pre></td>{cell}{pre}{html.escape(self.call)}"
                "</pre></td></tr></tbody></table>")


def seed(stage: str, lab_var: str = "lab") -> Commands:
    """The seed's commands for `stage` beside `lab.up(stage)` (no root needed).

    From `outside` on, the NAT commands labkit adds beyond the seed (and, for `hairpin`,
    which the seed lacks, all of them) follow in iptables' words, from labkit's NAT module."""
    from ...nat import api as nat
    from ...model import stages
    stages.check_stage(stage)
    said_blocks = blocks(stage)
    if stages.includes(stage, "outside"):
        before = set(nat.commands(stages.build(stages.previous(stage)).nat, "iptables"))
        said = "\n".join(text for _, text in said_blocks)
        extra = [f"sudo {line}" for line in nat.commands(stages.build(stage).nat, "iptables")
                 if line not in before and f"sudo {line}" not in said]
        if extra:
            said_blocks += (("on the host, also (labkit adds these; the seed does not)", "\n".join(extra)),)
    note = "in a terminal, open a shell in the lab's VM first: sudo nsenter --net=/run/netns/host bash"
    return Commands(stage, said_blocks, f"{lab_var}.up({stage!r})", note)
