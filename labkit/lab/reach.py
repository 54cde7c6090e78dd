"""What each stage makes reachable, and what it must not, probed with real traffic.

A probe is a ping or an HTTP GET from one lab namespace to an address of another (never to
anything outside the lab). `items(lab, stage, words)` turns the stage's probes into check
items in the seed's words. `send` and `probe` are the one probe that check, the notebooks'
reachability tables, their captures and the traffic tester widget all send.

The one success rule: a ping works when one echo request is answered within its timeout; an
HTTP GET works when a server answers it with a status below 400 (curl -f's rule: redirects
count, as they are not followed; 4xx and 5xx do not), proxies ignored, within 1 s to connect
and 3 s in all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..model import plan, seed, stages
from .verdict import Item, Words

CURL = ("curl", "-sS", "-f", "--noproxy", "*", "--connect-timeout", "1", "-m", "3",
        "-w", "\n%{http_code}")      # the status on a last line of its own
PUBLISHED = f"http://{plan.HOST_ADDRESS}:5000/"
NAME = "name:"                     # a probe target "name:NAME=ADDRESS": NAME resolves to ADDRESS
WHOAMI = f"http://{plan.PUBLIC_SERVER}/"


@dataclass(frozen=True)
class Probe:
    """From namespace `source`, ping `target` (an address) or GET it (a URL); `expect` it to work."""
    source: str
    target: str
    expect: bool = True
    why: str = ""            # what a wrong answer means, in the seed's words
    fix: str = ""            # the command that makes it work, when no state item names one
    look: str = ""           # where else to look
    via: str = "host"        # the namespace that routes or bridges it (the overlay's: host-a)

    @property
    def command(self) -> str:
        """The command a person types for this probe."""
        if self.target.startswith(NAME):
            return f"getent hosts {self.target[len(NAME):].split('=')[0]}"
        if self.target.startswith("http"):
            return f"curl {self.target}"
        return f"ping -c1 {self.target}"


def ping(lab, source: str, address: str, timeout: float = 1.0) -> bool:
    """True if one ping from namespace `source` to `address` is answered."""
    return lab.ping(source, address, timeout=timeout)


@dataclass(frozen=True)
class Answer:
    """What one probe got: `ok` by the success rule (module docstring); `said`, in a few words
    ("answered", "no answer", "HTTP 200", curl's error); `body`, an HTTP answer's body."""
    ok: bool
    said: str
    body: str = ""


def send(lab, source: str, target: str, timeout: float = 1.0) -> Answer:
    """One probe from namespace `source`: a ping to an address (waiting `timeout` seconds for
    the answer), or a GET of a URL ("://" in it)."""
    if target.startswith(NAME):         # name:NAME=ADDRESS, looked up as the namespace does
        name, _, want = target[len(NAME):].partition("=")
        result = lab.exec(source, ["getent", "ahostsv4", name], timeout=15)   # one question: A
        got = (result.stdout.split() or [""])[0]
        return Answer(result.returncode == 0 and got == want,
                      f"{name} is {got}" if got else f"{name} is not found", result.stdout)
    if "://" not in target:
        ok = ping(lab, source, target, timeout)
        return Answer(ok, "answered" if ok else "no answer")
    result = lab.exec(source, [*CURL, target])
    body, _, code = (result.stdout or "").rpartition("\n")
    ok = result.returncode == 0
    said = f"HTTP {code}" if code.isdigit() and code != "000" else \
        ((result.stderr or "").strip() or f"curl exited {result.returncode}")
    return Answer(ok, said, body)


def probe(lab, source: str, target: str, timeout: float = 1.0) -> bool:
    """True if `target` (an address: ping; a URL: GET) answers from namespace `source`."""
    return send(lab, source, target, timeout).ok


PATIENCE = 3.0                     # seconds a probe that should work is retried, all probes together


def _works(lab, p: Probe, deadline: float) -> bool:
    """Probe once; where it should work but does not, again until `deadline` (a link just set
    up takes the kernel a moment: a person checking right after typing is not told wrong)."""
    while True:
        got = probe(lab, p.source, p.target)
        if got or not p.expect or time.monotonic() > deadline:
            return got


def http(lab, source: str, url: str) -> tuple[bool, str]:
    """(answered with success, the body) of a GET of `url` from namespace `source`."""
    answer = send(lab, source, url)
    return answer.ok, answer.body


def _c(k: int) -> str:
    return plan.container_address(k)


def _seed(stage: str, i: int) -> str:
    return seed.STEPS[stage][i].command.removeprefix("sudo ")


_HAIRPIN = ("iptables -t nat -A POSTROUTING -s 172.18.0.0/16 -d 172.18.0.10 -o br0 -p tcp -m tcp "
            "--dport 5000 -m conntrack --ctstate DNAT -j MASQUERADE")
_BRIDGED = ("iptables -S FORWARD and sysctl net.bridge.bridge-nf-call-iptables (at 1, bridged "
            "packets pass the FORWARD chain)")
_UNBRIDGE = "iptables -P FORWARD ACCEPT (or: sysctl -w net.bridge.bridge-nf-call-iptables=0)"


PROBES: dict[str, tuple[Probe, ...]] = {
    "veth": (Probe("host", _c(0)), Probe("netns0", "172.18.0.11")),
    "two-veths": (
        Probe("netns0", "172.18.0.21", why="netns0 should reach veth1's address through the host"),
        Probe("host", _c(1), False, "the seed's lesson: the reply to netns1 leaves by veth0, "
              "the first of two routes for 172.18.0.0/16; did you add a route by hand?"),
        Probe("netns1", "172.18.0.21", False, "netns1 should not reach the host: the host's "
              "reply leaves by veth0"),
        Probe("netns0", _c(1), False, "netns0 should not reach netns1: nothing joins the two veths"),
    ),
    "bridge": (Probe("netns0", _c(1), look=_BRIDGED, fix=_UNBRIDGE),
               Probe("netns1", _c(0), look=_BRIDGED, fix=_UNBRIDGE), Probe("host", _c(0)),
               Probe("host", _c(1)), Probe("netns0", plan.BRIDGE_ADDRESS)),
    "outside": (Probe("netns0", plan.PUBLIC_SERVER), Probe("netns1", plan.PUBLIC_SERVER)),
    "publish": (Probe("world", PUBLISHED, why="from outside: the PREROUTING DNAT",
                      fix=_seed("publish", 1)),
                Probe("host", PUBLISHED, why="from the host itself: the OUTPUT DNAT",
                      fix=_seed("publish", 2))),
    "hairpin": (Probe("host", "http://127.0.0.1:5000/", why="published on the host's 127.0.0.1",
                      fix=_seed("hairpin", 2)),
                Probe("netns0", PUBLISHED, why="netns0 reaching its own published port (hairpin)",
                      fix=_HAIRPIN),
                Probe("netns1", PUBLISHED, why="another container reaching the published port",
                      fix=_HAIRPIN)),
    "ipv6": (Probe("world", PUBLISHED), Probe("host", PUBLISHED),
             Probe("netns0", plan.PUBLIC_SERVER),
             Probe("netns0", "http://[2001:db8:80::80]/", why="IPv6 out: a default route, "
                   "forwarding and NAT66"),
             Probe("netns1", "http://[2001:db8:80::80]/"),
             Probe("world", "http://[2001:db8:2::15]:5000/", why="from outside over IPv6: the "
                   "ip6 PREROUTING DNAT"),
             Probe("host", "http://[2001:db8:2::15]:5000/", why="from the host over IPv6: the "
                   "ip6 OUTPUT DNAT")),
    "ipv6-routed": (Probe("netns0", "http://[2001:db8:80::80]/", why="IPv6 out without NAT66: "
                          "the world needs its route back to fd00:172:18::/64"),
                    Probe("world", "http://[fd00:172:18::10]:5000/", why="the published port, "
                          "reached directly (routed: no DNAT)"),
                    Probe("world", "http://[fd00:172:18::10]:8080/", False, "an unpublished port "
                          "must stay closed to the world: the FORWARD filter's DROP"),
                    Probe("netns0", plan.PUBLIC_SERVER)),
    "overlay": (Probe("netns0", _c(1), why="one network across two hosts: the VXLAN tunnel",
                      look="bridge fdb show dev vxlan42; tcpdump -ni eth0 udp port 4789",
                      via="host-a"),
                Probe("netns1", _c(0), via="host-b", look="ip -d link show vxlan42"),
                Probe("netns0", f"http://{_c(1)}:8000/big.txt", why="a 1,400-byte response: "
                      "full-size segments must fit the tunnel (MTU 1450)", via="host-a",
                      look="ip link show vxlan42; ip netns exec netns0 ip link show ceth0")),
}
_DIRECT = ("the world has a route to 172.18.0.0/16 via the host, but the forward hook lets in "
           "only what was DNATed to a published port (moby#45610)")
_APART = "the two networks are kept apart (the isolation chains)"
_C2 = "172.19.0.10"          # netns2, on br1 (stages.SECOND_ADDRESS)
PROBES.update({
    "firewall": (Probe("netns0", plan.PUBLIC_SERVER, why="its replies come back by their conntrack state"),
                 Probe("netns1", plan.PUBLIC_SERVER), Probe("netns0", _c(1)),
                 Probe("world", PUBLISHED, why="the published port, DNATed and then accepted"),
                 Probe("host", PUBLISHED),
                 Probe("world", _c(0), False, _DIRECT),
                 Probe("world", f"http://{_c(0)}:5000/", False, _DIRECT)),
    "isolated": (Probe("netns0", plan.PUBLIC_SERVER), Probe("netns2", plan.PUBLIC_SERVER,
                 why="the second network reaches the world too (its own masquerade)"),
                 Probe("netns0", _c(1)), Probe("world", PUBLISHED), Probe("host", PUBLISHED),
                 Probe("netns0", _C2, False, _APART), Probe("netns2", _c(0), False, _APART),
                 Probe("netns1", _C2, False, _APART)),
    "names": (Probe("netns0", f"{NAME}netns1={_c(1)}", why="the container's resolver answers its names"),
              Probe("netns1", f"{NAME}netns0={_c(0)}"),
              Probe("netns0", f"{NAME}public.example={plan.PUBLIC_SERVER}",
                    why="other names are forwarded to the world's DNS server"),
              Probe("netns0", plan.PUBLIC_SERVER)),
})


def items(lab, stage: str, words: Words, patience: float = PATIENCE) -> list[Item]:
    """The stage's probes as check items; `outside` also asks which source the world sees.
    `patience`: seconds to retry probes that should work (0: each is sent once)."""
    roles = set(lab.roles())
    found = []
    deadline = time.monotonic() + patience      # shared: a broken lab costs it once, not per probe
    for p in PROBES.get(stage, ()):
        if p.source not in roles:
            found.append(Item(False, f"cannot probe from {p.source}: the namespace is missing",
                              "traffic", "ip netns list"))
            continue
        found.append(_item(p, _works(lab, p, deadline), words))
    if (stage == "outside" or stages.includes(stage, "firewall")) and "netns0" in roles:
        found.append(_source_seen(lab, words))   # firewall on: the world routes to the containers
    return found


def in_words(p: Probe, got: bool | None = None) -> str:
    """What probe `p` found in words ("netns0 reaches 172.18.0.20"); `got` None: what it expects."""
    got = p.expect if got is None else got
    if p.target.startswith(NAME):
        name, _, want = p.target[len(NAME):].partition("=")
        return f"{p.source} {'resolves' if got else 'does not resolve'} {name} to {want}"
    verb = "gets" if p.target.startswith("http") else "reaches"
    return (f"{p.source} {verb} {p.target}" if got else
            f"{p.source} {'gets no answer from' if verb == 'gets' else 'does not reach'} {p.target}")


def _item(p: Probe, got: bool, w: Words) -> Item:
    if p.target.startswith(NAME):
        return _name_item(p, got, w)
    said = in_words(p, got)
    if got == p.expect:
        return Item(True, said, "traffic")
    extra = f" ({p.why})" if p.why else ""
    look = w.look(p.source, p.command)
    if p.expect and p.source != p.via:
        look += f"; then {w.look(p.via, 'ip route get ' + _address(p.target))}"
    if p.look:
        look += f"; in {p.via}: {p.look}"
    fix = f"{w.where(p.via)}: {p.fix}" if p.fix else ""
    return Item(False, said + (" but should not" if got else "") + extra, "traffic", look, fix)


def _name_item(p: Probe, got: bool, w: Words) -> Item:
    name, _, want = p.target[len(NAME):].partition("=")
    said = f"{p.source} {'resolves' if got else 'does not resolve'} {name} to {want}"
    if got == p.expect:
        return Item(True, said, "traffic")
    look = (f"{w.look(p.source, p.command)}; {w.look(p.source, 'cat /etc/resolv.conf')}; "
            f"{w.look(p.source, 'iptables -t nat -S OUTPUT')}; {w.look(p.source, 'ss -lunp')}")
    return Item(False, said + (f" ({p.why})" if p.why else ""), "traffic", look,
                f"{w.where(p.source)}: {p.fix}" if p.fix else "")


def _address(target: str) -> str:
    if "//[" in target:  # an IPv6 URL: http://[ADDRESS]:PORT/
        return target.split("[")[1].split("]")[0]
    return target.split("//")[-1].split(":")[0].rstrip("/") if "//" in target else target


def _source_seen(lab, w: Words) -> Item:
    """The world's whoami page names the source address it saw: the host's, if masqueraded."""
    answered, body = http(lab, "netns0", WHOAMI)
    seen = body.strip()
    fix = (f"{w.where('host')}: iptables -t nat -A POSTROUTING -s {plan.BRIDGE_NET} "
           f"! -o br0 -j MASQUERADE")
    look = f"{w.look('host', f'tcpdump -ni {plan.HOST_UPLINK} icmp')} while netns0 pings " \
           f"{plan.PUBLIC_SERVER}; {w.look('host', 'iptables -t nat -S POSTROUTING')}"
    if answered and seen == plan.HOST_ADDRESS:
        return Item(True, f"the public server sees netns0's packets coming from {seen}", "traffic")
    if answered:
        return Item(False, f"the public server sees netns0's packets coming from {seen}, not from "
                    f"the host's {plan.HOST_ADDRESS}", "traffic", look, fix)
    return Item(False, f"netns0 gets no answer from the public server, so the source address "
                f"it sees cannot be read (it must be the host's {plan.HOST_ADDRESS})", "traffic", look)
