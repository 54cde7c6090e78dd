"""Is an IPv6 stage done? What `check` adds for `ipv6` (NAT66) and `ipv6-routed`.

The state: IPv6 forwarding in the host, and, in NAT66 mode, the host's ip6 nat rules (typed
with ip6tables or nft, in any order: labkit.nat.six.listing reads both). The traffic: the
containers reach the world's IPv6 server, the source it sees (the host's 2001:db8:2::15
behind NAT66, netns0's own fd00:172:18::10 when routed), the published port from the world
and the host, and in routed mode the world reaching netns0's published port directly but not
its unpublished one (a server listens there, so only a drop can keep it out).
"""
from __future__ import annotations

import re

from ..errors import LabkitError
from ..kernel import sysctl
from ..model import plan, six
from ..nat import six as nat6
from . import reach
from .verdict import Item, Words

_NAT_RULES = (  # (what, iptables -S regex, nft regex (hook first), the rule that fixes it)
    ("the NAT66 masquerade of fd00:172:18::/64", r"^nat -A POSTROUTING .*-j (MASQUERADE|SNAT)",
     r"^nft postrouting .*(masquerade|snat)", nat6.MASQUERADE6),
    (f"the PREROUTING DNAT of [{six.HOST_ADDRESS6}]:5000", rf"^nat -A PREROUTING .*-d {six.HOST_ADDRESS6}(/128)? .*--dport 5000 .*DNAT",
     rf"^nft prerouting .*ip6 daddr {six.HOST_ADDRESS6} .*dport 5000 .*dnat", nat6.PUBLISH6[0]),
    (f"the OUTPUT DNAT of [{six.HOST_ADDRESS6}]:5000", rf"^nat -A OUTPUT .*-d {six.HOST_ADDRESS6}(/128)? .*--dport 5000 .*DNAT",
     rf"^nft output .*ip6 daddr {six.HOST_ADDRESS6} .*dport 5000 .*dnat", nat6.PUBLISH6[1]),
)


def items(lab, stage: str, w: Words) -> list[Item]:
    """The state items of an IPv6 stage (its traffic is in reach.PROBES and `source_seen`)."""
    host = w.ns("host")
    found = []
    key, on = six.IPV6_ON[0]
    for role in lab.roles():
        if role == "world" or plan.container_index(role) is None and role != "host":
            continue                    # the world's IPv6 is the scene
        now = sysctl.read(w.ns(role), key)
        where = "the host" if role == "host" else role
        found.append(Item(now == on, f"IPv6 is {'on' if now == on else 'off'} in {where} ({key} "
                          f"is {now})", "addresses", w.look(role, f"sysctl {key}"),
                          f"{w.where(role)}: sysctl -w {key}={on}"))
    now = sysctl.read(host, six.FORWARDING6)
    found.append(Item(now == "1", "the host " + ("forwards IPv6 packets" if now == "1" else
                      f"does not forward IPv6 packets ({six.FORWARDING6} is {now})"), "forwarding",
                      w.look("host", f"sysctl {six.FORWARDING6}"),
                      f"{w.where('host')}: sysctl -w {six.FORWARDING6}=1"))
    if nat6.mode_of(stage) != "nat":
        return found
    try:
        lines = nat6.listing(host)
    except LabkitError:
        lines = []
    for what, iptables, nft, rule in _NAT_RULES:
        ok = any(re.search(iptables, line) or re.search(nft, line) for line in lines)
        found.append(Item(ok, f"{what} is " + ("there" if ok else "missing"), "nat",
                          w.look("host", f"ip6tables -t nat -S {rule.chain}") + " (or nft list ruleset)",
                          f"{w.where('host')}: {rule.command().removeprefix('sudo ')}"))
    return found


def source_seen(lab, stage: str, w: Words) -> Item:
    """The world's IPv6 whoami page names the source it saw: the host's address behind NAT66,
    netns0's own when routed."""
    routed = nat6.mode_of(stage) == "routed"
    want = six.container_address6(0) if routed else six.HOST_ADDRESS6
    answered, body = reach.http(lab, "netns0", six.url(six.PUBLIC_SERVER6))
    seen = body.strip()
    look = (f"{w.look('host', f'tcpdump -ni {plan.HOST_UPLINK} ip6')} while netns0 asks "
            f"{six.url(six.PUBLIC_SERVER6)}; {w.look('host', 'ip6tables -t nat -S POSTROUTING')}")
    fix = (f"{w.where('host')}: ip6tables -t nat -D POSTROUTING -s {six.BRIDGE_NET6} ! -o br0 -j MASQUERADE"
           if routed else f"{w.where('host')}: {nat6.MASQUERADE6.command().removeprefix('sudo ')}")
    if answered and seen == want:
        return Item(True, f"the public server sees the source of netns0's IPv6 packets as {seen}", "traffic")
    if answered:
        return Item(False, f"the public server sees the source of netns0's IPv6 packets as {seen}, not "
                    f"from {want}" + (" (routed: no NAT66)" if routed else " (the host's, by NAT66)"),
                    "traffic", look, fix)
    return Item(False, f"netns0 gets no answer from the public server over IPv6, so the source it "
                f"sees cannot be read (it must be {want})", "traffic", look)
