"""IPv6 beside IPv4 (the `ipv6` and `ipv6-routed` stages): the addressing scheme, written once.

    host     ens18 2001:db8:2::15/64, default via 2001:db8:2::2; br0 fd00:172:18::1/64
    world    wan0 2001:db8:2::2/64; 2001:db8:80::80/128 on lo (the public server's IPv6 address)
    netnsK   cethK fd00:172:18::K/64 (netns0 ::10, netns1 ::20), default via fd00:172:18::1

Container K's IPv6 address repeats its IPv4 plan in the last groups: fd00:172:18::(K // 25):
(10 * (K % 25 + 1)), so netns0 is fd00:172:18::10 and netns25 fd00:172:18::1:10 (the digits
read as hexadecimal: the names match, the numbers do not). fd00::/8 is unique local (RFC
4193, the kind of prefix Docker gives a network with --ipv6 and no subnet); 2001:db8::/32 is
for documentation (RFC 3849), as 10.0.2.0/24 and 203.0.113.0/24 stand in for real networks.

Every address is added without duplicate address detection (`nodad`), so a lab is ready at
once; the link-local fe80:: addresses are the kernel's own and are not in the plan. IPv6 is
on only in the namespaces of these stages (every other stage turns it off, plan.IPV6_OFF):
turning it off again takes every IPv6 address and route away with it, so going back to an
earlier stage converges.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from . import plan

BRIDGE_NET6 = "fd00:172:18::/64"
BRIDGE_ADDRESS6 = "fd00:172:18::1"
HOST_ADDRESS6 = "2001:db8:2::15"
WORLD_ADDRESS6 = "2001:db8:2::2"
PREFIX6 = 64
PUBLIC_SERVER6 = "2001:db8:80::80"
IPV6_ON = (("net.ipv6.conf.all.disable_ipv6", "0"), ("net.ipv6.conf.default.disable_ipv6", "0"))
FORWARDING6 = "net.ipv6.conf.all.forwarding"
PUBLISHED_PORT = 5000
UNPUBLISHED_PORT = 8080          # a port of netns0 the routed mode keeps closed to the world
ROUTED = "ipv6-routed"


def container_address6(k: int) -> str:
    """IPv6 address of container k, without prefix length (see the module docstring)."""
    plan.container_address(k)  # the same range check
    high, low = k // 25, 10 * (k % 25 + 1)
    return f"fd00:172:18::{high}:{low}" if high else f"fd00:172:18::{low}"


def url(address: str, port: int | None = None) -> str:
    """An HTTP URL of an IPv6 address ("http://[2001:db8:2::15]:5000/")."""
    return f"http://[{address}]" + (f":{port}" if port else "") + "/"


# -- the host's IPv6 rules, as data (labkit.nat.six makes them with either tool) -----------
_CHAINS = {("nat", "PREROUTING"): ("prerouting", "nat", "prerouting", "dstnat"),
           ("nat", "OUTPUT"): ("output", "nat", "output", "-100"),
           ("nat", "POSTROUTING"): ("postrouting", "nat", "postrouting", "srcnat"),
           ("filter", "FORWARD"): ("forward", "filter", "forward", "filter")}


@dataclass(frozen=True)
class Rule6:
    """One IPv6 rule: its table and chain, its ip6tables words after `-A CHAIN`, its nft
    words, and what it does (in the seed's manner)."""
    table: str
    chain: str
    iptables: str
    nft: str
    does: str

    def argv(self) -> list[str]:
        """ip6tables arguments that append it (-t TABLE -A CHAIN ...)."""
        return ["-t", self.table, "-A", self.chain, *shlex.split(self.iptables)]

    def command(self, tool_name: str = "iptables") -> str:
        """What a person types to add it (`sudo ip6tables ...` or the nft lines)."""
        if tool_name == "nft":
            name, kind, hook, prio = _CHAINS[(self.table, self.chain)]
            return (f"sudo nft add table ip6 {self.table}\n"
                    f"sudo nft 'add chain ip6 {self.table} {name} {{ type {kind} hook {hook} "
                    f"priority {prio}; }}'\n"
                    f"sudo nft 'add rule ip6 {self.table} {name} {self.nft}'")
        return f"sudo ip6tables -t {self.table} -A {self.chain} {self.iptables}"


_DNAT = (f"-p tcp -m tcp --dport {PUBLISHED_PORT} -j DNAT --to-destination "
         f"[{container_address6(0)}]:{PUBLISHED_PORT}")
_NFT_DNAT = (f"tcp dport {PUBLISHED_PORT} counter dnat to "
             f"[{container_address6(0)}]:{PUBLISHED_PORT}")
MASQUERADE6 = Rule6("nat", "POSTROUTING", f"-s {BRIDGE_NET6} ! -o br0 -j MASQUERADE",
                    f'ip6 saddr {BRIDGE_NET6} oifname != "br0" counter masquerade',
                    "packets from the containers leave with the host's IPv6 address (NAT66)")
PUBLISH6 = (
    Rule6("nat", "PREROUTING", f"-d {HOST_ADDRESS6}/128 {_DNAT}",
          f"ip6 daddr {HOST_ADDRESS6} {_NFT_DNAT}",
          f"packets from outside to [{HOST_ADDRESS6}]:5000 go to netns0"),
    Rule6("nat", "OUTPUT", f"-d {HOST_ADDRESS6}/128 {_DNAT}",
          f"ip6 daddr {HOST_ADDRESS6} {_NFT_DNAT}",
          f"the host's own packets to [{HOST_ADDRESS6}]:5000 go to netns0"),
)
ROUTED_FILTER = (
    Rule6("filter", "FORWARD", "-o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
          'oifname "br0" ct state established,related counter accept',
          "replies to the containers' own connections come in"),
    Rule6("filter", "FORWARD", f"-d {container_address6(0)}/128 -i {plan.HOST_UPLINK} -o br0 "
          f"-p tcp -m tcp --dport {PUBLISHED_PORT} -j ACCEPT",
          f'iifname "{plan.HOST_UPLINK}" oifname "br0" ip6 daddr {container_address6(0)} '
          f'tcp dport {PUBLISHED_PORT} counter accept',
          "new connections from outside to netns0's published port come in"),
    Rule6("filter", "FORWARD", f"-i {plan.HOST_UPLINK} -o br0 -j DROP",
          f'iifname "{plan.HOST_UPLINK}" oifname "br0" counter drop',
          "everything else from outside to the containers is dropped"),
)


def extend(bp, n: int, routed: bool) -> None:
    """Add the IPv6 half to blueprint `bp` of a `publish`-like lab with `n` containers: IPv6
    on in host, world and containers, their addresses and routes, forwarding, the world's
    IPv6 server and netns0's server on its IPv6 address; `routed`: the world routes
    fd00:172:18::/64 via the host (Docker's gateway_mode_ipv6=routed) instead of NAT66."""
    roles = ["host", "world"] + [plan.container(k) for k in range(n)]
    for role in roles:
        for key, value in IPV6_ON:
            bp.sysctl(role, key, value)
    bp.address("host", plan.HOST_UPLINK, f"{HOST_ADDRESS6}/{PREFIX6}")
    bp.address("world", plan.WORLD_UPLINK, f"{WORLD_ADDRESS6}/{PREFIX6}")
    bp.address("world", "lo", f"{PUBLIC_SERVER6}/128")
    bp.address("host", "br0", f"{BRIDGE_ADDRESS6}/{PREFIX6}")
    for k in range(n):
        bp.address(plan.container(k), f"ceth{k}", f"{container_address6(k)}/{PREFIX6}")
        bp.route(plan.container(k), "default", via=BRIDGE_ADDRESS6)
    bp.route("host", "default", via=WORLD_ADDRESS6)
    bp.sysctl("host", FORWARDING6, "1")
    if routed:
        bp.route("world", BRIDGE_NET6, via=HOST_ADDRESS6)
    bp.server("world", PUBLIC_SERVER6, 80, kind="whoami")
    bp.server(plan.container(0), container_address6(0), PUBLISHED_PORT)
    if routed:  # a port of netns0 that is not published: the routed mode keeps it closed
        bp.server(plan.container(0), container_address6(0), UNPUBLISHED_PORT)


def _step(where: str, command: str, does: str, seed: bool = True, nft: str = "") -> tuple:
    return (where, command, does, seed, nft)


def steps() -> dict:
    """The commands a person types for each IPv6 stage (labkit.model.seed.Step fields), from the
    stage before it: labkit's own (seed=False), the seed has no IPv6."""
    Step = _step  # noqa: N806 (seed.Step's fields, as a tuple: seed wraps them)

    def host(command, does, rule=None):
        return Step("host", command, does, False, rule.command("nft") if rule else "")

    def on(role):  # `all` sets `default` too, and every interface there is
        key, value = IPV6_ON[0]
        return (Step(role, f"{'sudo ' if role == 'host' else ''}sysctl -w {key}={value}",
                     "IPv6 on (labkit's lab starts with it off)", False),)

    inside = ()
    for k in range(2):
        ns, a = plan.container(k), container_address6(k)
        inside += on(ns) + (
            Step(ns, f"ip addr add {a}/64 dev ceth{k} nodad", f"{ns}'s IPv6 address, usable at once", False),
            Step(ns, f"ip -6 route add default via {BRIDGE_ADDRESS6}", "IPv6 out through the host", False))
    nat = (
        *on("host"),
        host(f"sudo ip addr add {HOST_ADDRESS6}/64 dev {plan.HOST_UPLINK} nodad", "the host's IPv6 address"),
        host(f"sudo ip -6 route add default via {WORLD_ADDRESS6}", "the host's IPv6 default route"),
        host(f"sudo ip addr add {BRIDGE_ADDRESS6}/64 dev br0 nodad", "the containers' IPv6 gateway"),
        host(f"sudo sysctl -w {FORWARDING6}=1", "the host forwards IPv6 packets"),
        host(MASQUERADE6.command(), MASQUERADE6.does, MASQUERADE6),
        *(host(r.command(), r.does, r) for r in PUBLISH6),
    ) + inside + (
        Step("netns0", f"python3 -m http.server --bind {container_address6(0)} {PUBLISHED_PORT} &",
             "netns0's web server on its IPv6 address", False),)
    routed = (
        host(MASQUERADE6.command().replace(" -A ", " -D "), "no NAT66: the containers' own "
             "addresses go out"),
        *(host(r.command(), r.does, r) for r in ROUTED_FILTER),
        Step("world", f"ip -6 route add {BRIDGE_NET6} via {HOST_ADDRESS6}",
             "the world (the upstream router) routes the containers' prefix to the host", False),
    )
    return {"ipv6": nat, ROUTED: routed}
