"""A check's verdict as plain data: items met or not, each with three levels of hint: where to
look, what kind of change (which object, with which tool), then the command."""
from __future__ import annotations

import html
import json
import re
import shlex
from dataclasses import asdict, dataclass, field

from ..kernel import netns
from ..model import plan

LAYERS = ("namespaces", "links", "addresses", "routes", "forwarding", "servers", "traffic")


@dataclass(frozen=True)
class Item:
    """One thing the stage needs: met or not, in the seed's words, with three levels of hint."""
    ok: bool
    what: str            # the fact found, e.g. "veth1 is not a port of br0"
    layer: str           # one of LAYERS
    look: str = ""       # level 1: where to look, and with which tool
    fix: str = ""        # level 3: the command that fixes it (where to type it first)

    @property
    def change(self) -> str:
        """Level 2: what kind of change fixes it (which object, with which tool), read from
        the fix without its arguments ("in host: change the link veth1, with `ip link`")."""
        return kind_of_change(self.fix)


@dataclass(frozen=True)
class Result:
    """What `check` found: every item, met or not; true when the stage is done."""
    stage: str
    lab: str
    items: tuple[Item, ...] = field(default=())
    symptoms: tuple[str, ...] = ()     # a mystery fault: what the traffic shows, one line each
    mystery: bool = False              # then without hints only the symptoms are said
    kind: str = "stage"                # "topology": a lab of one's own (`stage` is its name)

    @property
    def ok(self) -> bool:
        """True when every item is met."""
        return all(i.ok for i in self.items)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def unmet(self) -> list[Item]:
        """The items not met, in the order of the lesson (earliest step first)."""
        return [i for i in self.items if not i.ok]

    def hints(self, level: int = 1) -> list[str]:
        """One line per unmet item: level 1 says where to look, level 2 adds what kind of
        change, level 3 the command that fixes it."""
        lines = []
        for item in self.unmet:
            lines.append(item.what + (f"; look: {item.look}" if item.look else ""))
            if level >= 2 and item.change:
                lines.append(f"    change: {item.change}")
            if level >= 3 and item.fix:
                lines.append(f"    fix: {item.fix}")
        return lines

    def text(self, level: int = 0) -> str:
        """The verdict and one line per unmet item (with hints at `level` 1, 2 or 3)."""
        who = f"lab {self.lab}" if self.lab else "the lab"
        if self.ok and self.kind != "stage":
            return (f"{self.kind} {self.stage}: done ({who} has what the {self.kind} declares and "
                    f"does what it expects: {len(self.items)} checks)")
        if self.ok:
            return f"stage {self.stage}: done ({who} does what the stage does: {len(self.items)} checks)"
        if self.mystery:
            return self._mystery_text(level)
        head = f"{self.kind} {self.stage}: not done yet ({len(self.unmet)} of {len(self.items)} checks unmet)"
        lines = self.hints(level) if level else [i.what for i in self.unmet]
        return "\n".join([head] + [f"  {line}" for line in lines])

    def _mystery_text(self, level: int) -> str:
        """A mystery fault's verdict: what the traffic shows; hints only at `level` 1 to 3."""
        lines = [f"stage {self.stage}: not done yet: something is broken. What the traffic shows:"]
        lines += [f"  {line}" for line in self.symptoms]
        if not level:
            lines.append(f"Find the cause with the course's tools. {LEVELS_SAID.format(stage=self.stage)}")
            return "\n".join(lines)
        lines.append(("Where to look:", "Where to look, and what kind of change:",
                      "Where to look, and the fix:")[min(level, 3) - 1])
        return "\n".join(lines + [f"  {line}" for line in self.hints(level)])

    def __str__(self) -> str:
        return self.text(0 if self.mystery else 1)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.ok else "#c62828"
        head = html.escape(self.text().splitlines()[0])
        rows = "".join(f"<li>{html.escape(i.what)}<br><small>look: {html.escape(i.look)}</small></li>"
                       for i in self.unmet) if not self.mystery else \
            "".join(f"<li>{html.escape(line)}</li>" for line in self.symptoms if not self.ok)
        return (f'<div class="labkit-check"><b style="color:{color}">{head}</b>'
                + (f"<ul>{rows}</ul>" if rows else "") + "</div>")

    def to_dict(self) -> dict:
        """JSON-ready: stage, lab, ok, items (a mystery fault's: its symptoms instead)."""
        if self.mystery:
            return {"stage": self.stage, "lab": self.lab, "ok": self.ok, "mystery": True,
                    "symptoms": list(self.symptoms)}
        return {"stage": self.stage, "lab": self.lab, "ok": self.ok,
                **({"kind": self.kind} if self.kind != "stage" else {}),
                "items": [asdict(i) for i in self.items]}

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2)


LEVELS_SAID = ("Hints: where to look (level 1: labkit check --hint, lab.hint({stage!r}, 1)); "
               "what kind of change (level 2: labkit check --hint 2, lab.hint({stage!r}, 2)); "
               "the command (level 3: labkit check --fix, lab.hint({stage!r}, 3)).")

_OBJECTS = {"link": "the link", "addr": "an address", "address": "an address", "route": "a route",
            "neigh": "a neighbour entry", "neighbour": "a neighbour entry", "netns": "a namespace",
            "fdb": "a forwarding-table entry"}
_VERBS = {"add": "add", "append": "add", "replace": "change", "set": "change", "change": "change",
          "del": "delete", "delete": "delete", "flush": "empty", "-A": "add", "-I": "add",
          "-D": "delete", "-P": "change the policy of", "-F": "empty"}


def kind_of_change(fix: str) -> str:
    """What kind of change a fix makes, without its arguments: for each command, where it is
    typed, the verb, the object and the tool ("in host: add a route, with `ip route`")."""
    said, where = [], ""
    for part in re.split(r";\s*(?:then\s+)?", fix):
        head, sep, command = part.rpartition("): ")
        if sep and head.startswith("in "):
            where = head.split(" (")[0].removeprefix("in ")
        else:
            command = part
        one = _one_change(command.strip())
        if one and f"in {where}: {one}" not in said:
            said.append(f"in {where}: {one}" if where else one)
    return "; then ".join(said)


def _one_change(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = [w for w in words if w != "sudo"]
    if words[:3] == ["ip", "netns", "exec"] and len(words) > 4:
        words = words[4:]
    if not words:
        return ""
    tool = words[0]
    if tool in ("ip", "bridge") and len(words) > 2:
        args = [w for w in words[1:] if not w.startswith("-")]
        thing, verb = args[0], _VERBS.get(args[1] if len(args) > 1 else "", "change")
        name = ""
        if thing == "link" and len(args) > 2:
            name = f" {args[2]}"
        elif "dev" in args[:-1]:
            name = f" on {args[args.index('dev') + 1]}"
        noun = _OBJECTS.get(thing, thing)
        if verb == "add" and noun == "the link":
            noun = "a link"
        return f"{verb} {noun}{name}, with `{tool} {thing}`"
    if tool in ("iptables", "ip6tables"):
        table = words[words.index("-t") + 1] if "-t" in words[:-1] else "filter"
        flag = next((w for w in words if w in _VERBS), "")
        chain = words[words.index(flag) + 1] if flag and words.index(flag) + 1 < len(words) else ""
        if flag == "-P":
            return f"change the policy of the {table} table's {chain} chain, with `{tool}`"
        return f"{_VERBS.get(flag, 'change')} a rule in the {table} table's {chain} chain, with `{tool}`"
    if tool == "nft":
        return "change a rule, with `nft`"
    if tool == "sysctl":
        key = next((w.split("=")[0] for w in words[1:] if "=" in w), "")
        return f"change the kernel setting {key}, with `sysctl`"
    return f"start or run `{tool}`" if command.rstrip().endswith("&") else f"run `{tool}`"


class Words:
    """The lab's kernel names in commands ("netns0" -> "t1-netns0" in lab t1)."""

    def __init__(self, lab: str):
        self.lab = lab

    def ns(self, role: str) -> str:
        return plan.namespace_name(self.lab, role)

    def where(self, role: str) -> str:
        """Where to type a command that acts in namespace `role` (a shell in it)."""
        return f"in {role} ({self.shell(role)})"

    def shell(self, role: str) -> str:
        """The command that opens a root shell in namespace `role`: nsenter for the host (the
        namespaces added from there must be seen everywhere; `ip netns exec` gives its shell
        a mount namespace of its own), `ip netns exec` elsewhere (it binds the namespace's
        own resolv.conf and hosts from /etc/netns)."""
        return "sudo " + shlex.join(netns.command(self.ns(role), ["bash"], own_etc=role != "host",
                                                  check=False))

    def look(self, role: str, command: str) -> str:
        """`command` run in namespace `role`, typed from any root shell."""
        return f"ip netns exec {self.ns(role)} {command}"

    def prompt(self, role: str) -> str:
        """The prompt of `labkit shell ROLE` (a space follows it): the namespace's kernel name ("t1-host#")."""
        return f"{self.ns(role)}#"

    def labkit_shell(self, role: str) -> str:
        """`labkit shell ROLE` for this lab: a shell in namespace `role` whose prompt names it
        (sudo: outside a normal user's world, where labkit needs root)."""
        from ..kernel import world
        sudo = "" if world.wanted() or world.joined() is not None else "sudo "
        return f"{sudo}labkit shell {role}" + (f" --lab {self.lab}" if self.lab else "")
