"""A blueprint's expectations (labkit.model.expectation) sent as real traffic, as check items.

Each is sent from its `src` namespace to the addresses its `dst` stands for: one ping each
(reach.ping, the rule of labkit.lab.reach), or a TCP connect opened from inside `src`
(reached: the connection is established; a refusal means the packets got there and nothing
listens, or a REJECT answered). Only lab namespaces are probed from, and only the addresses
the blueprint or the student named are sent to.
"""
from __future__ import annotations

import contextlib
import errno
import socket
import time

from ..kernel import netns
from ..model import expectation as model
from ..model.topology import Topology
from . import reach
from .verdict import Item, Words

CONNECT_TIMEOUT = 1.0


def connect(kernel_name: str, address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str:
    """A TCP connect from namespace `kernel_name` to address:port: "connected", "refused",
    "unreachable" (an ICMP error, or no route) or "no answer" (nothing within `timeout`)."""
    with netns.entered(kernel_name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, TimeoutError):
        return "no answer"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
            return "unreachable"
        raise
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def _send(lab, e: model.Expectation, address: str) -> tuple[bool, str]:
    """(reached, what happened in a few words) for one address of `e`."""
    if e.port is None:
        ok = reach.ping(lab, e.src, address)
        return ok, "answered" if ok else "no answer"
    said = connect(lab.ns(e.src), address, e.port)
    return said == "connected", said


def _probe(lab, e: model.Expectation, addresses, deadline: float) -> tuple[bool, str]:
    """Whether any of `addresses` is reached; one that should be is tried again until
    `deadline` (a link just set up takes the kernel a moment)."""
    while True:
        said = []
        for address in addresses:
            ok, what = _send(lab, e, address)
            if ok:
                return True, f"{address}: {what}" if len(addresses) > 1 else what
            said.append(f"{address}: {what}" if len(addresses) > 1 else what)
        if not e.reaches or time.monotonic() > deadline:
            return False, "; ".join(said)


def _hub(want: Topology) -> str | None:
    """The namespace that routes between the lab's networks (the first of kind host), if any."""
    return next((ns.role for ns in want.namespaces if ns.kind == "host"), None)


def _source(want: Topology, role: str) -> str | None:
    ns = want.namespace(role)
    return next((c.split("/")[0] for itf in (ns.interfaces if ns else ()) for c in itf.addresses), None)


def item(e: model.Expectation, addresses, got: bool, said: str, want: Topology, w: Words) -> Item:
    """One expectation as a check item: met or not, named in the student's own terms, with
    where to look (level 1) and a command that would make it hold (level 3)."""
    target = model.words(e, addresses)
    if got == e.reaches:
        return Item(True, f"{e.src} reaches {target}" if got else
                    f"{e.src} does not reach {target} ({said}), as expected", "traffic")
    first = addresses[0]
    test = (f"ping -c1 {first}" if e.port is None else
            f"timeout 2 bash -c '</dev/tcp/{first}/{e.port}' && echo connected")
    look = [w.look(e.src, test), w.look(e.src, f"ip route get {first}")]
    hub = _hub(want)
    if hub:
        look.append(w.look(hub, "iptables -S FORWARD") + " (and nft list ruleset)")
    src = _source(want, e.src)
    match = (f"-s {src} " if src else "") + f"-d {first}" + (f" -p tcp --dport {e.port}" if e.port else "")
    if e.reaches:
        what = f"{e.src} should reach {target}, and it does not ({said})"
        if e.port and said == "refused" and e.by_role:
            fix = f"{w.where(e.dst)}: start a server on {first}:{e.port} (nothing listens there: ss -ltn)"
        else:
            fix = (f"{w.where(hub)}: delete the FORWARD rule that drops it (iptables -S FORWARD shows "
                   f"them), or insert one that lets it through: iptables -I FORWARD {match} -j ACCEPT "
                   f"(and the answers: iptables -I FORWARD -m conntrack --ctstate ESTABLISHED,RELATED "
                   f"-j ACCEPT)") if hub else ""
    else:
        what = f"{e.src} should not reach {target}, and it does"
        fix = (f"{w.where(hub)}: iptables -I FORWARD {match} -j DROP (if the host routes it; "
               f"on one bridge, frames pass FORWARD only with net.bridge.bridge-nf-call-iptables=1)"
               if hub else "")
    return Item(False, what, "traffic", "; ".join(look), fix)


def items(lab, expectations, want: Topology, words: Words, patience: float = reach.PATIENCE) -> list[Item]:
    """The blueprint's expectations, each sent for real, as check items. `patience`: seconds to
    retry those that should be reached (0: each is sent once), shared by all."""
    roles = set(lab.roles())
    deadline = time.monotonic() + patience
    found = []
    for e in expectations:
        addresses = model.targets(e, want)
        if e.src not in roles:
            found.append(Item(False, f"cannot send {e.src}'s probe to {model.words(e, addresses)}: "
                              f"namespace {words.ns(e.src)} is missing", "traffic", "ip netns list"))
            continue
        got, said = _probe(lab, e, addresses, deadline)
        found.append(item(e, addresses, got, said, want, words))
    return found
