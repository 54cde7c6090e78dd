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

Everything a helper prints is deterministic on purpose (nbval compares stored outputs): no
timestamps, no ICMP ids or TCP sequence numbers, one line per distinct packet path (a repeated
ARP request or a retransmission is not counted), rows in a fixed order. Pictures are PNG
(`IPython.display.Image`), which nbval does not compare. Every helper that touches the kernel
checks privileges first, so without them (Binder) a cell prints one line, not a traceback.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import html
import logging
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable

from ..model import plan
from ..kernel import privilege
from ..errors import BadValue
from ..capture.frames import syn_frame

# ---- the seed's commands, stage by stage -----------------------------------------------------

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
    note = "in a terminal, enter the lab's VM first: sudo ip netns exec host bash"
    return Commands(stage, blocks, f"{lab_var}.up({stage!r})", note)


# ---- a command in a namespace, shown as in a terminal ----------------------------------------

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
"""Unset for commands run by `sh`: a proxy of the machine is unreachable from inside the lab."""


@dataclass(frozen=True)
class Shell:
    """A command's output, shown with the terminal command line that gives the same."""
    prompt: str
    output: str

    def __str__(self) -> str:
        return f"$ {self.prompt}\n{self.output}".rstrip()

    __repr__ = __str__


def sh(lab, role: str, command: str, *, check: bool = True) -> Shell:
    """Run `command` (a string, split like a shell would) in namespace `role` of `lab`.

    Raises AssertionError with the output if it fails and `check` is true."""
    privilege.require()
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise BadValue(f"cannot split the command {command!r} as a shell would: {e}") from None
    if not argv:
        raise BadValue("no command given: write one, e.g. sh(lab, 'host', 'ip route')")
    settle(lab)
    privilege.require_tool(argv[0])
    result = lab.exec(role, ["env", *(f"--unset={v}" for v in PROXY_VARIABLES), *argv])
    out = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"`{command}` in {role} failed (exit {result.returncode}): {out.strip()}")
    return Shell(f"sudo ip netns exec {lab.ns(role)} {command}", out)


def _pending(lab, role: str) -> list[str]:
    """Interfaces of `role` that are up with carrier but whose operational state the kernel
    has not updated yet (it does so in batches, up to a second later)."""
    import json
    out = lab.exec(role, ["ip", "-j", "link", "show"]).stdout
    links = json.loads(out or "[]")
    return [link["ifname"] for link in links
            if {"UP", "LOWER_UP"} <= set(link.get("flags", ())) and link.get("operstate") != "UP"
            and link.get("link_type") != "loopback"]      # lo stays UNKNOWN; a new veth starts so


def settle(lab, timeout: float = 10.0) -> list[str]:
    """Wait (polling) until every lab interface that is up with carrier is reported UP, so
    `ip` prints the same states (and no stale `linkdown` on routes) every time; returns the
    interfaces still pending after `timeout` seconds (none, normally)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        pending = [f"{r}:{i}" for r in lab.roles() for i in _pending(lab, r)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.02)


# ---- the topology, drawn from the live kernel ------------------------------------------------

@contextlib.contextmanager
def _quiet_matplotlib():
    """Keep matplotlib's one-off log lines (building the font cache) out of cell outputs."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _image(png: bytes):
    from IPython.display import Image
    return Image(data=png, format="png")


def draw(lab, since: str | None = None):
    """The lab as the kernel holds it now (`lab.inspect()`), as a PNG image for a notebook.

    With `since` (a stage name), what differs from that stage's plan is marked."""
    privilege.require()
    from ..draw import diagram
    previous = lab.plan(since) if since else None
    with _quiet_matplotlib():
        return _image(diagram.render(diagram.layout(lab.inspect(), previous), "png"))


# ---- reachability, checked with real traffic -------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One check: from namespace `source` to `target` (an address: ping; a URL: HTTP GET)."""
    source: str
    target: str
    expected: bool
    got: bool | None = None
    holder: str = ""                     # who holds the target address, e.g. "host:veth1"

    @property
    def ok(self) -> bool:
        return self.got == self.expected

    @property
    def how(self) -> str:
        return "http" if "://" in self.target else "ping"


def _yes(b: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[b]


@dataclass(frozen=True)
class Reachability:
    """Probes run against the live lab; a table when shown."""
    probes: tuple[Probe, ...]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes)

    def rows(self) -> list[tuple[str, ...]]:
        return [(p.source, p.how, p.target + (f" ({p.holder})" if p.holder else ""),
                 _yes(p.expected), _yes(p.got), "ok" if p.ok else "DIFFERS")
                for p in self.probes]

    HEADER = ("from", "test", "to", "expected", "got", "")

    def __str__(self) -> str:
        return _table(self.HEADER, self.rows())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return _html_table(self.HEADER, self.rows())


def _table(header, rows) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in [header, *rows])


def _html_table(header, rows) -> str:
    head = "".join(f'<th style="text-align:left">{html.escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="text-align:left"><code>{html.escape(c)}</code></td>'
                                    for c in r) + "</tr>" for r in rows)
    return f'<table class="labkit-lesson"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _http_ok(lab, source: str, url: str, timeout: float) -> bool:
    """True if an HTTP GET of `url` from namespace `source` gets status 200 (proxies ignored)."""
    r = lab.exec(source, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*",
                          "--max-time", str(timeout), url], timeout=timeout + 5)
    return r.returncode == 0 and r.stdout.strip() == "200"


def _holder(addresses: dict, target: str) -> str:
    host = re.sub(r"^\w+://", "", target).split("/")[0].rsplit(":", 1)[0]
    where = addresses.get(host)
    if where:
        return f"{where[0]}:{where[1]}"
    if host.startswith("127."):
        return "its own lo"
    return ""


def probe(lab, source: str, target: str, timeout: float = 1.0) -> bool:
    """True if `target` answers from namespace `source`: a ping to an address, a GET to a URL."""
    if "://" in target:
        return _http_ok(lab, source, target, max(timeout, 2.0))
    return lab.ping(source, target, timeout=timeout)


def reachability(lab, checks, timeout: float = 0.5) -> Reachability:
    """Run `checks` [(from role, address or URL, expected True/False)] at once; returns the table.

    Raises AssertionError naming every check whose result differs from what is expected, so
    a notebook fails when reality changes. A failed ping waits `timeout` seconds."""
    privilege.require()
    checks = [(s, t, bool(e)) for s, t, e in checks]
    for source, _, _ in checks:
        lab.ns(source)                                    # UnknownName now, not in a thread
    addresses = lab.inspect().addresses()

    def run(check):
        source, target, expected = check
        return Probe(source, target, expected, probe(lab, source, target, timeout),
                     _holder(addresses, target))

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        table = Reachability(tuple(pool.map(run, checks)))
    if not table.ok:
        wrong = [f"  {p.source} -> {p.target}: expected {'an answer' if p.expected else 'no answer'}, "
                 f"got {'an answer' if p.got else 'none'}" for p in table.probes if not p.ok]
        raise AssertionError(
            "reachability differs from what this lesson teaches:\n" + "\n".join(wrong)
            + f"\n\n{table}\n\nWas the lab changed by hand? Run the notebook's lab.up(...) cell "
              "again (stages converge from any state) and then this cell.")
    return table


# ---- captures, as packet paths ---------------------------------------------------------------

_TCP_NAMES = {"S": "SYN", "SA": "SYN-ACK", "A": "ACK", "PA": "PSH-ACK", "FA": "FIN-ACK",
              "FPA": "FIN-PSH-ACK", "R": "RST", "RA": "RST-ACK"}


def describe(hop) -> str:
    """What a packet is, without what varies from run to run (ICMP id, TCP sequence numbers)."""
    info = hop.summary
    if hop.proto == "icmp":
        return re.sub(r" ?\bid=\d+", "", info)
    if hop.proto == "tcp":
        m = re.search(r"\[(\w*)\].*?len=(\d+)", info)
        if m:
            name = _TCP_NAMES.get(m.group(1), m.group(1))
            return name + (f" len={m.group(2)}" if m.group(2) != "0" else "")
    if hop.proto == "udp":
        return re.sub(r"^\d+ > \d+ ", "", info)
    return info


def _ends(hop) -> str:
    if hop.src is None or hop.proto == "arp":
        return f"{hop.src_mac} > {hop.dst_mac}"
    return hop.endpoints()


def _changes(hop) -> str:
    parts = [f"{c.field} {c.before} -> {c.after}" for c in hop.changes if c.field != "icmp_id"]
    return ("NAT: " + ", ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Trace:
    """What a capture saw while one thing happened: one entry per distinct packet path.

    `paths` are labkit.capture.packets Paths (first of each kind); `packets` every captured frame
    (write them with `trace.packets.write("x.pcapng")`); `points` the capture points."""
    action: str
    outcome: str                         # "answered", "NO ANSWER", or what a probe found
    points: tuple[str, ...]
    paths: tuple = ()
    packets: object = field(default=None, repr=False, compare=False)

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    @property
    def silent(self) -> list[str]:
        """Capture points where none of the shown packets was seen."""
        seen = {h.point for p in self.paths for h in p.hops}
        return [pt for pt in self.points if pt not in seen]

    def lines(self) -> list[str]:
        out = [f"{self.action}: {self.outcome}"]
        width = max([len(pt) for pt in self.points] + [5])
        for i, p in enumerate(self.paths, 1):
            out.append(f"{i}. {p.proto} {describe(p.hops[0])}")
            for h in p.hops:
                extra = _changes(h)
                out.append(f"     {h.point:<{width}}  {h.direction:<3}  {_ends(h)}"
                           + (f"   <- {extra}" if extra else ""))
        if not self.paths:
            out.append("(no packets of this lesson were seen)")
        if self.silent:
            out.append(f"nothing seen at: {', '.join(self.silent)}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def hops(self, index: int = 0) -> list:
        """The hops of path `index` (for exercises and assertions)."""
        return list(self.paths[index].hops)

    def find(self, proto: str | None = None, text: str = "") -> list:
        """Paths whose protocol is `proto` and whose description contains `text`."""
        return [p for p in self.paths if (proto is None or p.proto == proto)
                and text in describe(p.hops[0])]

    def show(self) -> None:
        """Display the packet paths as text, then as a ladder diagram (in one notebook cell)."""
        from IPython.display import display
        display(self)
        display(self.ladder())

    def ladder(self):
        """The paths as a ladder diagram (labkit.draw.ladder), a PNG image for a notebook."""
        from ..draw import ladder
        title = f"{self.action}: {self.outcome.lower()}"
        with _quiet_matplotlib():
            lay = ladder.layout(list(self.paths), points=list(self.points), title=title)
            return _image(ladder.render(lay, "png"))


def _signature(path) -> tuple:
    return tuple((h.point, h.direction, h.proto, _ends(h), describe(h)) for h in path.hops)


def distinct(paths, keep: Callable | None = None) -> list:
    """The first path of each kind (same hops, same packet description), in time order;
    `keep(path)` selects the lesson's packets."""
    out, seen = [], set()
    for p in paths:
        if not p.hops or (keep is not None and not keep(p)):
            continue
        sig = _signature(p)
        if sig not in seen:
            seen.add(sig)
            out.append(p)
    return out


def flush_neighbours(lab) -> None:
    """Forget every learned MAC address (ARP) in the lab's namespaces, so a capture that
    follows shows the ARP exchange every time, not only the first time a cell runs."""
    for role in lab.roles():
        lab.exec(role, ["ip", "neigh", "flush", "all"])


def watch(lab, points, *, ping: tuple[str, str] | None = None, http: tuple[str, str] | None = None,
          keep=None, filter: str = "arp or icmp or tcp",
          timeout: float = 0.5, fresh: bool = True) -> Trace:
    """Capture at `points` while `ping` = (from role, address) or `http` = (from role, URL) runs.

    `keep` selects the paths to show: protocol names ("icmp", ("arp", "icmp")) or a function
    of a path (default: ARP and ICMP for a ping; TCP SYN and SYN-ACK for HTTP, where NAT's
    rewrites show). `fresh` first empties the ARP caches."""
    privilege.require()
    from ..capture.live import Capture
    if (ping is None) == (http is None):
        raise BadValue("give exactly one of ping=(role, address) or http=(role, url)")
    source, target = ping or http
    lab.ns(source)
    if fresh:
        flush_neighbours(lab)
    if keep is None:
        keep = _default_keep(ping is not None)
    elif isinstance(keep, (str, tuple, list)):
        protos = {keep} if isinstance(keep, str) else set(keep)
        keep = lambda p, protos=protos: p.proto in protos
    with Capture(points, lab=lab, filter=filter) as cap:
        answered = probe(lab, source, target, timeout)
    packets = cap.packets
    paths = distinct(packets.paths(), keep)
    if http is not None:
        paths = _own_connections(paths)
    action = f"{'ping' if ping else 'HTTP GET'} from {source} to {target}"
    return Trace(action, "answered" if answered else "NO ANSWER",
                 tuple(p.label for p in cap.points), tuple(paths), packets)


def _own_connections(paths: list) -> list:
    """TCP paths of the connections this capture saw open (a SYN), so that a server's late
    retransmission for an older connection does not show up; other protocols as they are."""
    opened = {(h.src, h.sport) for p in paths if describe(p.hops[0]) == "SYN" for h in p.hops}
    return [p for p in paths if p.proto != "tcp" or describe(p.hops[0]) == "SYN"
            or any((h.dst, h.dport) in opened for h in p.hops)]


def _default_keep(is_ping: bool) -> Callable:
    if is_ping:
        return lambda p: p.proto in ("arp", "icmp")
    return lambda p: p.proto == "tcp" and describe(p.hops[0]) in ("SYN", "SYN-ACK")


def neighbour_syn(lab, target: str = "127.0.0.1", port: int = 5000, timeout: float = 3.0) -> Trace:
    """What a neighbour on the LAN can do: from `world`, send a TCP SYN for target:port in a
    frame addressed straight to the host's ens18 MAC (as moby#41872 describes), then a
    control SYN for 10.0.2.15:port; capture at host:ens18 and netns0:ceth0 until the control
    arrives (frames on one path keep their order). Traffic stays inside the lab."""
    privilege.require()
    import socket
    from ..kernel import netns
    from ..capture.live import Capture
    probes = ((31001, target), (31002, plan.HOST_ADDRESS))
    frames = [syn_frame(plan.mac_for(plan.WORLD_ADDRESS), plan.mac_for(plan.HOST_ADDRESS),
                        plan.WORLD_ADDRESS, dst, sport, port, seq=sport) for sport, dst in probes]
    with netns.entered(lab.ns("world")):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    points = ["host:ens18", "netns0:ceth0"]
    control = lambda pkts: any(p.headers.sport == 31002 and p.point == "netns0:ceth0"
                               for p in pkts.filter(proto="tcp"))
    with tx, Capture(points, lab=lab, filter=f"tcp port {port}") as cap:
        tx.bind((plan.WORLD_UPLINK, 0))
        for frame in frames:
            tx.send(frame)
        arrived = cap.wait(until=control, timeout=timeout)
    if not arrived:
        raise AssertionError("the control SYN to 10.0.2.15 never reached netns0: is the stage up?")
    syns = lambda p: p.proto == "tcp" and describe(p.hops[0]) == "SYN" and p.hops[0].sport in (31001, 31002)
    # in probe order: two frames sent one after the other may still be received out of order
    # (each send queues its frame on the CPU the sender happens to run on)
    paths = sorted(distinct(cap.packets.paths(), syns), key=lambda p: p.hops[0].sport)
    reached = any(h.point == "netns0:ceth0" and h.sport == 31001 for p in paths for h in p.hops)
    outcome = (f"the SYN to {target} REACHED netns0" if reached
               else f"the SYN to {target} was dropped in the host")
    action = f"SYNs from world to {target}:{port} and (control) {plan.HOST_ADDRESS}:{port}, " \
             f"sent to the host's MAC"
    return Trace(action, outcome, tuple(points), tuple(paths), cap.packets)


def gone(lab) -> str:
    """After `lab.down()`: assert that nothing of the lab is left (namespaces, journal)."""
    from ..lab import journal
    from ..kernel import netns
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


def check(name: str, answer, lab=None):
    """Check `answer` to exercise `name` against the live lab (labkit.teach.exercises): prints
    "Right: ..." with the reason, or a hint aimed at that wrong answer."""
    from .exercises import check as _check
    return _check(name, answer, lab)
