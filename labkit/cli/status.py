"""Plain-text and JSON views of a lab's live state (what `labkit status` prints)."""
from __future__ import annotations

import json

from ..model.topology import Topology, route_text


def text(topology: Topology, nat_lines: list[str] | None = None) -> str:
    """A terminal listing: each namespace, its interfaces (state, MAC, peer, master, addresses),
    static routes and the sysctls labkit touches."""
    if not topology.namespaces:
        return f"lab {topology.lab or '(default)'}: down (nothing created)"
    lines = [f"lab {topology.lab or '(default)'}: stage {topology.stage or '(none)'}, "
             f"{len(topology.containers)} container(s)"]
    for ns in topology.namespaces:
        lines.append(f"{ns.role} [{ns.kind}]")
        for itf in ns.interfaces:
            parts = [f"  {itf.name:<8}", f"{itf.kind:<8}", "UP  " if itf.up else "DOWN"]
            if itf.mac:
                parts.append(itf.mac)
            if itf.peer:
                parts.append(f"peer {itf.peer[0]}:{itf.peer[1]}")
            if itf.master:
                parts.append(f"master {itf.master}")
            if itf.addresses:
                parts.append(" ".join(itf.addresses))
            lines.append(" ".join(parts))
        for route in ns.routes:
            lines.append(f"  route {route_text(route)}")
        settings = [f"{k.rsplit('.', 1)[-1] if 'ipv6' not in k else k.split('.', 3)[-1]}={v}"
                    for k, v in ns.sysctls]
        if settings:
            lines.append("  sysctl " + " ".join(settings))
    for line in nat_lines or []:
        lines.append(line)
    return "\n".join(lines)


def as_json(topology: Topology, extra: dict | None = None) -> str:
    """The topology as JSON (with `extra` keys merged in, e.g. NAT rules)."""
    data = topology.to_dict()
    data.update(extra or {})
    return json.dumps(data, indent=2, sort_keys=True)


def machine_section(lab_name: str = "", kernel_names: list[str] = (), before: dict | None = None,
                    heading: str = "warning") -> list[str]:
    """What the machine's own network holds that carries a name, address or route of the
    stages (labkit.lab.misplaced.strays), as lines with the commands that remove it ([]: none);
    `before`: a practice's record of what was there already (left out)."""
    from ..lab import misplaced
    return misplaced.lines(misplaced.strays(lab_name, list(kernel_names), before), heading)


def left_by(lab_names: list[str]) -> dict:
    """Each lab's record of what the machine held before it was practised, merged (read before
    `down` or `clean` removes the journals): what `left_section` leaves out."""
    from ..lab import journal, misplaced
    keys, forward = set(), None
    for name in lab_names:
        record = journal.Journal(name).get(misplaced.MACHINE_RECORD) or {}
        keys |= set(record.get("keys", ()))
        forward = forward or record.get("ip_forward")
    return {"keys": sorted(keys), "ip_forward": forward}


def left_section(before: dict) -> list[str]:
    """After `down` or `clean`: what is left in the machine's own network that labkit did
    not make (it never removes it), with the commands that do."""
    return machine_section(before=before, heading="left as it is")
