"""An expectation of a lab of one's own: what one of its namespaces should reach, or not.

    bp.expect("web", "db")                          # web's ping to db is answered
    bp.expect("web", "172.19.0.2", port=5432)       # web opens a TCP connection to db's 5432
    bp.expect("web", "db", port=80, reaches=False)  # ... and not to its port 80

In a topology file, one `[[expects]]` entry each (src, dst, reaches, port). `src` is a
namespace of the blueprint (the probe is sent from there); `dst` an IPv4 address, or a
namespace, which stands for its addresses (reached if any of them is). Without a port the
probe is one ping; with one, a TCP connect (reached: the connection is established).
`labkit check --topology FILE` and `lab.check(blueprint)` send them (labkit.lab.expectation).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import plan, validation
from ..errors import BadAddress, BadValue, UnknownName
from .topology import Topology

_ADDRESS_LIKE = re.compile(r"[0-9.]+")


@dataclass(frozen=True)
class Expectation:
    """From namespace `src`, `dst` (an address or a namespace) is reached, or (reaches=False) not;
    on TCP `port` if given, else by ping."""
    src: str
    dst: str
    reaches: bool = True
    port: int | None = None

    @property
    def by_role(self) -> bool:
        """True if `dst` names a namespace rather than an address."""
        return not _ADDRESS_LIKE.fullmatch(self.dst)


def make(src, dst, reaches, port, roles) -> Expectation:
    """The Expectation of a `Blueprint.expect` call, checked against the declared namespaces
    `roles`; a LabkitError naming what is wrong and the fix."""
    what = f"expect {src} -> {dst}"
    declared = ", ".join(roles) or "none yet"
    if src not in roles:
        raise UnknownName(f"{what}: src {src!r} is not a declared namespace (declared: {declared}): "
                          f"name the namespace the probe is sent from, or declare it first")
    if not isinstance(dst, str) or not dst:
        raise BadValue(f"{what}: dst {dst!r}: give a namespace's name ({declared}) or an IPv4 "
                       f"address such as 172.19.0.2")
    if _ADDRESS_LIKE.fullmatch(dst):
        address = plan.parse_address(dst)
        if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
            raise BadAddress(f"{what}: {dst} is not one host's address: name a namespace, or an "
                             f"address of one, such as 172.19.0.2")
        dst = str(address)
    elif dst not in roles:
        raise UnknownName(f"{what}: dst {dst!r} is neither a declared namespace (declared: "
                          f"{declared}) nor an IPv4 address: name one of them, or write an "
                          f"address such as 172.19.0.2")
    if not isinstance(reaches, bool):
        raise BadValue(f"{what}: reaches={reaches!r}: write true or false (True or False in Python)")
    if port is not None:
        validation.check_port(port, f"{what}: port")
    return Expectation(src, dst, reaches, port)


def targets(expectation: Expectation, topology: Topology) -> tuple[str, ...]:
    """The addresses `expectation.dst` stands for in `topology` (its own, or the namespace's,
    in declaration order); BadValue for a namespace that holds none."""
    if not expectation.by_role:
        return (expectation.dst,)
    ns = topology.namespace(expectation.dst)
    found = tuple(cidr.split("/")[0] for itf in (ns.interfaces if ns else ()) for cidr in itf.addresses)
    if not found:
        raise BadValue(f"expect {expectation.src} -> {expectation.dst}: {expectation.dst} holds no "
                       f"address in the blueprint, so nothing can be sent to it: give one of its "
                       f"interfaces an address, or name an address as dst")
    return found


def words(expectation: Expectation, addresses: tuple[str, ...]) -> str:
    """What the expectation is sent to, in words: "db (172.19.0.2)", "172.19.0.2", with
    " on TCP port 5432" if it has a port."""
    said = f"{expectation.dst} ({', '.join(addresses)})" if expectation.by_role else expectation.dst
    return said + (f" on TCP port {expectation.port}" if expectation.port else "")
