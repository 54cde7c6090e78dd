"""The seed's commands for each stage, step by step, as a person types them (plain data).

A step says where it is typed (a shell in a lab namespace: `host` is the seed's VM) and what
it does. The words are the seed's, `sudo` included; two steps are labkit's own, marked
`seed=False`: turning forwarding on (the seed's VM had it on already; the lab's host starts
with it off, so the in-between state can be seen) and, for `hairpin`, which the seed lacks,
every command. `steps(stage, lab)` writes the namespace names of lab `lab` (`t1-netns0`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from . import plan
from ..errors import BadValue


@dataclass(frozen=True)
class Step:
    """One command, typed in a shell in namespace `where`; `does` says what it changes.
    `nft`: the same with nft instead of iptables (lines a person types), for NAT steps."""
    where: str
    command: str
    does: str
    seed: bool = True
    nft: str = ""


def _host(command: str, does: str, seed: bool = True, nft: str = "") -> Step:
    return Step("host", command, does, seed, nft)


_HOOKS = {"PREROUTING": ("prerouting", "prerouting", "dstnat"), "OUTPUT": ("output", "output", "-100"),
          "POSTROUTING": ("postrouting", "postrouting", "srcnat")}


def _nft(table: str, chain: str, rule: str) -> str:
    """What a person types to add `rule` with nft: the table and its base chain, then the rule."""
    name, hook, priority = _HOOKS[chain]
    kind = "nat" if table == "nat" else "filter"
    if table == "raw":
        priority = "raw"
    return (f"sudo nft add table ip {table}\n"
            f"sudo nft 'add chain ip {table} {name} {{ type {kind} hook {hook} priority {priority}; }}'\n"
            f"sudo nft 'add rule ip {table} {name} {rule}'")


def _container(k: int, recreate: bool = False) -> tuple[Step, ...]:
    ns, veth, ceth = f"netns{k}", f"veth{k}", f"ceth{k}"
    return (
        _host(f"sudo ip netns add {ns}", f"a new network namespace: container {k}"),
        _host(f"sudo ip link add {veth} type veth peer name {ceth}", "a veth pair, both ends on the host"),
        _host(f"sudo ip link set {ceth} netns {ns}", f"one end moves into {ns}"),
        _host(f"sudo ip link set {veth} up", "the host's end up"),
    ) + (() if recreate else (
        _host(f"sudo ip addr add {plan.host_veth_address(k)}/16 dev {veth}",
              f"an address on the host's end: and a route for 172.18.0.0/16 via {veth}"),))


def _inside(k: int) -> tuple[Step, ...]:
    ns, ceth = f"netns{k}", f"ceth{k}"
    return (
        Step(ns, "ip link set lo up", "the loopback interface up"),
        Step(ns, f"ip link set {ceth} up", "the container's end up"),
        Step(ns, f"ip addr add {plan.container_address(k)}/16 dev {ceth}",
             "the container's address: and its route for 172.18.0.0/16"),
    )


_DNAT = "-p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.18.0.10:5000"
_NFT_DNAT = "tcp dport 5000 counter dnat to 172.18.0.10:5000"

STEPS: dict[str, tuple[Step, ...]] = {
    "veth": _container(0) + _inside(0),
    "two-veths": _container(1) + _inside(1),
    "bridge": (
        _host("sudo ip netns delete netns0", "container 0 goes, and its veth pair with it"),
        _host("sudo ip netns delete netns1", "container 1 goes, and its veth pair with it"),
    ) + _container(0, recreate=True) + _container(1, recreate=True) + _inside(0) + _inside(1) + (
        _host("sudo ip link add br0 type bridge", "a bridge: a switch inside the host"),
        _host("sudo ip link set br0 up", "the bridge up"),
        _host("sudo ip link set veth0 master br0", "veth0 becomes a port of br0"),
        _host("sudo ip link set veth1 master br0", "veth1 becomes a port of br0"),
        _host("sudo ip addr add 172.18.0.1/16 dev br0", "the host's address on the bridge: one route"),
    ),
    "outside": (
        Step("netns0", "ip route add default via 172.18.0.1", "netns0 sends what is not local to the host"),
        Step("netns1", "ip route add default via 172.18.0.1", "netns1 sends what is not local to the host"),
        _host("sudo sysctl -w net.ipv4.ip_forward=1", "the host forwards packets between interfaces",
              seed=False),
        _host("sudo iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br0 -j MASQUERADE",
              "packets from the containers leave with the host's address",
              nft=_nft("nat", "POSTROUTING", 'ip saddr 172.18.0.0/16 oifname != "br0" counter masquerade')),
    ),
    "publish": (
        Step("netns0", "python3 -m http.server --bind 172.18.0.10 5000 &", "a web server in netns0"),
        _host(f"sudo iptables -t nat -A PREROUTING -d 10.0.2.15 {_DNAT}",
              "packets from outside to 10.0.2.15:5000 go to netns0",
              nft=_nft("nat", "PREROUTING", f"ip daddr 10.0.2.15 {_NFT_DNAT}")),
        _host(f"sudo iptables -t nat -A OUTPUT -d 10.0.2.15 {_DNAT}",
              "the host's own packets to 10.0.2.15:5000 go to netns0",
              nft=_nft("nat", "OUTPUT", f"ip daddr 10.0.2.15 {_NFT_DNAT}")),
    ),
    "hairpin": (
        _host("sudo sysctl -w net.ipv4.conf.br0.route_localnet=1",
              "packets from 127.0.0.1 may leave by br0", seed=False),
        _host(f"sudo iptables -t nat -A PREROUTING -d 127.0.0.1 {_DNAT}",
              "packets to 127.0.0.1:5000 arriving from the network go to netns0", seed=False,
              nft=_nft("nat", "PREROUTING", f"ip daddr 127.0.0.1 {_NFT_DNAT}")),
        _host(f"sudo iptables -t nat -A OUTPUT -d 127.0.0.1 {_DNAT}",
              "the host's own packets to 127.0.0.1:5000 go to netns0", seed=False,
              nft=_nft("nat", "OUTPUT", f"ip daddr 127.0.0.1 {_NFT_DNAT}")),
        _host("sudo iptables -t nat -A POSTROUTING -s 127.0.0.0/8 -o br0 -j MASQUERADE",
              "and they leave by br0 with br0's address", seed=False,
              nft=_nft("nat", "POSTROUTING", 'ip saddr 127.0.0.0/8 oifname "br0" counter masquerade')),
        _host("sudo iptables -t raw -A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP",
              "nothing from the network may claim 127.0.0.1 (moby#41872)", seed=False,
              nft=_nft("raw", "PREROUTING", 'ip daddr 127.0.0.0/8 iifname != "lo" counter drop')),
    ),
}
"""Each stage's steps, from the state of the stage before it (see `practice`)."""


# -- the stages after publish and outside (issue 23): labkit's own, none is in the seed ----------
def _filter(chain: str, rule: str, does: str, nft: str) -> Step:
    """An iptables filter-table step on the host, with the same in nft (a table of its own, ip
    firewall: iptables-nft keeps ip filter for itself)."""
    base = chain == "FORWARD"
    make = ("sudo nft 'add chain ip firewall forward { type filter hook forward priority filter; }'"
            if base else f"sudo nft add chain ip firewall {chain.lower()}")
    return _host(f"sudo iptables {rule}", does, seed=False,
                 nft=f"sudo nft add table ip firewall\n{make}\nsudo nft 'add rule ip firewall "
                     f"{chain.lower()} {nft}'")


def _chain(name: str, does: str) -> Step:
    return _host(f"sudo iptables -N {name}", does, seed=False,
                 nft=f"sudo nft add table ip firewall\nsudo nft add chain ip firewall {name.lower()}")


def _network(b: str) -> tuple[Step, ...]:
    """FORWARD's four rules for bridge `b`'s network (Docker's, in its order)."""
    return (
        _filter("FORWARD", f"-A FORWARD -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                f"replies into {b}'s network pass, by their conntrack state",
                f'oifname "{b}" ct state established,related counter accept'),
        _filter("FORWARD", f"-A FORWARD -o {b} -j DOCKER", f"new connections into {b}'s network: "
                f"to the DOCKER chain (published ports)", f'oifname "{b}" counter jump docker'),
        _filter("FORWARD", f"-A FORWARD -i {b} ! -o {b} -j ACCEPT", f"{b}'s containers may connect out",
                f'iifname "{b}" oifname != "{b}" counter accept'),
        _filter("FORWARD", f"-A FORWARD -i {b} -o {b} -j ACCEPT", f"{b}'s containers may reach each "
                f"other (icc)", f'iifname "{b}" oifname "{b}" counter accept'),
    )


_RESOLVER = ("dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --user=root --group= --pid-file= --cache-size=0 "
             "--bind-interfaces --listen-address=127.0.0.11 --port=10053 --server=10.0.2.2 "
             "--host-record=netns0,172.18.0.10 --host-record=netns1,172.18.0.20")


def _names(k: int) -> tuple[Step, ...]:
    ns, rule = f"netns{k}", "-d 127.0.0.11 -p {0} --dport 53 -j DNAT --to-destination 127.0.0.11:10053"
    nft = "ip daddr 127.0.0.11 {0} dport 53 counter dnat to 127.0.0.11:10053"
    return (
        Step(ns, _RESOLVER, f"{ns}'s own resolver on 127.0.0.11:10053: the containers' names, the "
             f"rest forwarded to the world's DNS server", seed=False),
        Step(ns, "iptables -t nat -A OUTPUT " + rule.format("udp"), "queries to 127.0.0.11:53 over "
             "UDP go to the resolver's port", seed=False, nft=_nft("nat", "OUTPUT", nft.format("udp"))),
        Step(ns, "iptables -t nat -A OUTPUT " + rule.format("tcp"), "and over TCP", seed=False,
             nft=_nft("nat", "OUTPUT", nft.format("tcp"))),
        Step(ns, "echo nameserver 127.0.0.11 > /etc/resolv.conf", f"{ns} asks 127.0.0.11 (its own "
             f"resolv.conf, which ip netns exec binds over /etc)", seed=False),
    )


STEPS.update({
    "firewall": (
        Step("world", "ip route add 172.18.0.0/16 via 10.0.2.15", "the world routes the containers' "
             "network to the host, as a neighbour could", seed=False),
        _chain("DOCKER-USER", "a chain for the user's own rules"),
        _chain("DOCKER", "a chain for the published ports"),
        _filter("DOCKER-USER", "-A DOCKER-USER -j RETURN", "no rules of the user's yet: back to FORWARD",
                "counter return"),
        _filter("FORWARD", "-A FORWARD -j DOCKER-USER", "the user's rules come first",
                "counter jump docker-user"),
    ) + _network("br0") + (
        _filter("DOCKER", "-A DOCKER -d 172.18.0.10 ! -i br0 -o br0 -p tcp --dport 5000 -m conntrack "
                "--ctstate DNAT -j ACCEPT", "the published port, for what was DNATed to it",
                'ip daddr 172.18.0.10 iifname != "br0" oifname "br0" tcp dport 5000 ct status dnat '
                'counter accept'),
        _host("sudo iptables -P FORWARD DROP", "what no rule accepts is dropped", seed=False,
              nft="sudo nft add table ip firewall\nsudo nft 'add chain ip firewall forward { type filter hook "
                  "forward priority filter; policy drop; }'"),
    ),
    "isolated": (
        _host("sudo ip link add br1 type bridge", "a second network", seed=False),
        _host("sudo ip link set br1 up", "the bridge up", seed=False),
        _host("sudo ip addr add 172.19.0.1/16 dev br1", "its gateway",
              seed=False),
    ) + tuple(replace(s, seed=False, does=d) for s, d in zip(_container(2, recreate=True), (
        "container 2", "its veth pair", "into netns2", "veth2 up"))) + (
        _host("sudo ip link set veth2 master br1", "a port of br1", seed=False),
        Step("netns2", "ip link set lo up", "lo up", seed=False),
        Step("netns2", "ip link set ceth2 up", "ceth2 up", seed=False),
        Step("netns2", "ip addr add 172.19.0.10/16 dev ceth2", "its address", seed=False),
        Step("netns2", "ip route add default via 172.19.0.1", "its way out",
             seed=False),
        _host("sudo iptables -t nat -A POSTROUTING -s 172.19.0.0/16 ! -o br1 -j MASQUERADE",
              "br1's network masqueraded", seed=False),
        _chain("DOCKER-ISOLATION-STAGE-1", "isolation, stage 1"),
        _chain("DOCKER-ISOLATION-STAGE-2", "isolation, stage 2"),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-1 -i br0 ! -o br0 -j DOCKER-ISOLATION-STAGE-2",
              "out of br0: stage 2", seed=False),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-1 -i br1 ! -o br1 -j DOCKER-ISOLATION-STAGE-2",
              "out of br1: stage 2", seed=False),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-1 -j RETURN", "the rest: back", seed=False),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-2 -o br0 -j DROP", "into br0: dropped",
              seed=False),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-2 -o br1 -j DROP", "into br1: dropped",
              seed=False),
        _host("sudo iptables -A DOCKER-ISOLATION-STAGE-2 -j RETURN", "the rest: back",
              seed=False),
        _host("sudo iptables -I FORWARD 2 -j DOCKER-ISOLATION-STAGE-1", "before any accept",
              seed=False),
    ) + tuple(replace(s, nft="", does=d) for s, d in zip(_network("br1"), (
        "replies into br1", "new into br1: DOCKER", "br1 out", "within br1"))),
    "names": _names(0) + _names(1),
})


def _beyond() -> None:
    """The chapters beyond the seed: their steps are labkit's own (model.six, model.overlay)."""
    from . import overlay, six
    for chapter in (six.steps(), overlay.steps()):
        STEPS.update({stage: tuple(Step(*fields) for fields in steps) for stage, steps in chapter.items()})


_beyond()

NEW_NAMESPACES = {"veth": ("netns0",), "two-veths": ("netns1",), "bridge": ("netns0", "netns1")}
NEW_NAMESPACES.update({"isolated": ("netns2",)})
"""The namespaces a person creates in each stage (the bridge stage deletes and re-adds both)."""


def steps(stage: str, lab: str = "", tool: str = "iptables") -> tuple[Step, ...]:
    """The steps of `stage` with lab `lab`'s namespace names (no root needed); with
    tool="nft" the NAT steps are nft's words."""
    from .stages import check_stage
    check_stage(stage)
    if tool not in ("iptables", "nft"):
        raise BadValue(f"tool {tool!r} is not known: use iptables or nft")
    return tuple(replace(s, command=kernel_names(s.nft if tool == "nft" and s.nft else s.command, lab))
                 for s in STEPS[stage])


def kernel_names(command: str, lab: str) -> str:
    """`command` with the container namespaces of lab `lab` named as the kernel knows them (a
    name in a resolver's --host-record=netns1,... is the container's name in the lab, kept)."""
    if not lab:
        return command
    return re.sub(r"(?<![\w=,-])(netns\d+)\b(?!:)", lambda m: plan.namespace_name(lab, m.group(1)),
                  command)
