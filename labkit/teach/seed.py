"""The seed's shell commands for each stage, beside the one labkit call that does the same.

`seed(stage)` needs no root and runs nothing: it returns `Commands`, shown as text in a
terminal and as a two-column table in a notebook. From `outside` on, the NAT commands labkit
adds beyond the seed follow in iptables' words, taken from labkit.nat (so they never drift)."""
from __future__ import annotations

import html
from dataclasses import dataclass

_VETH_HOST = """\
sudo ip netns add netns0
sudo ip link add veth0 type veth peer name ceth0
sudo ip link set ceth0 netns netns0
sudo ip link set veth0 up
sudo ip addr add 172.18.0.11/16 dev veth0"""
_VETH_NETNS0 = """\
ip link set lo up
ip link set ceth0 up
ip addr add 172.18.0.10/16 dev ceth0"""
_TWO_HOST = """\
sudo ip netns add netns1
sudo ip link add veth1 type veth peer name ceth1
sudo ip link set ceth1 netns netns1
sudo ip link set veth1 up
sudo ip addr add 172.18.0.21/16 dev veth1"""
_TWO_NETNS1 = """\
ip link set lo up
ip link set ceth1 up
ip addr add 172.18.0.20/16 dev ceth1"""
_BRIDGE_RECREATE = """\
sudo ip netns delete netns0
sudo ip netns delete netns1
sudo ip netns add netns0
sudo ip link add veth0 type veth peer name ceth0
sudo ip link set veth0 up
sudo ip link set ceth0 netns netns0
sudo ip netns add netns1
sudo ip link add veth1 type veth peer name ceth1
sudo ip link set veth1 up
sudo ip link set ceth1 netns netns1"""
_BRIDGE_HOST = """\
sudo ip link add br0 type bridge
sudo ip link set br0 up
sudo ip link set veth0 master br0
sudo ip link set veth1 master br0
sudo ip addr add 172.18.0.1/16 dev br0"""
_OUTSIDE_HOST = """\
cat /proc/sys/net/ipv4/ip_forward          # must say 1 (labkit sets it)
sudo iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE"""
_PUBLISH_HOST = """\
sudo iptables -t nat -A PREROUTING -d 10.0.2.15 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.18.0.10:5000
sudo iptables -t nat -A OUTPUT -d 10.0.2.15 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.18.0.10:5000"""
_NETNS = "in {ns} (sudo nsenter --net=/var/run/netns/{ns} bash)"

SEED: dict[str, tuple[tuple[str, str], ...]] = {
    "veth": (("on the host", _VETH_HOST), (_NETNS.format(ns="netns0"), _VETH_NETNS0)),
    "two-veths": (("on the host", _TWO_HOST), (_NETNS.format(ns="netns1"), _TWO_NETNS1)),
    "bridge": (("on the host: recreate both containers, without host addresses", _BRIDGE_RECREATE),
               (_NETNS.format(ns="netns0"), _VETH_NETNS0), (_NETNS.format(ns="netns1"), _TWO_NETNS1),
               ("on the host: the bridge", _BRIDGE_HOST)),
    "outside": (("in netns0 and in netns1", "ip route add default via 172.18.0.1"),
                ("on the host", _OUTSIDE_HOST)),
    "publish": (("in netns0", "python3 -m http.server --bind 172.18.0.10 5000"),
                ("on the host", _PUBLISH_HOST)),
    "hairpin": (),                      # beyond the seed: see seed() (the NAT module's words)
}
"""What the seed does for each stage, as (where, commands) blocks, in the seed's own words."""


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
    from ..nat import api as nat
    from ..model import stages
    stages.check_stage(stage)
    blocks = SEED[stage]
    i = stages.STAGES.index(stage)
    if i >= stages.STAGES.index("outside"):
        before = set(nat.commands(stages.build(stages.STAGES[i - 1]).nat, "iptables"))
        said = "\n".join(text for _, text in blocks)
        extra = [f"sudo {line}" for line in nat.commands(stages.build(stage).nat, "iptables")
                 if line not in before and f"sudo {line}" not in said]
        if extra:
            where = ("on the host (not in the seed: what Docker and CNI portmap add)"
                     if stage == "hairpin" else "on the host, also (labkit adds these; the seed does not)")
            blocks = blocks + ((where, "\n".join(extra)),)
    note = "in a terminal, open a shell in the lab's VM first: sudo nsenter --net=/run/netns/host bash"
    return Commands(stage, blocks, f"{lab_var}.up({stage!r})", note)
