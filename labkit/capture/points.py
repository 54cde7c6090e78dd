"""Capture points: where to capture, named relative to a lab ("netns0:ceth0") or by kernel names.

Checks names only, never the kernel (labkit.capture.sockets opens them).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadName
from ..model import plan


@dataclass(frozen=True)
class Point:
    """Where to capture: interface `iface` in kernel namespace `namespace`, shown as `label`."""
    namespace: str
    iface: str
    label: str

    def __str__(self) -> str:
        return self.label


def parse_point(spec, lab="") -> Point:
    """A capture point from "ROLE:IFACE" (relative to `lab`, a name or a Lab), a
    (kernel namespace, interface) pair, or a Point. Checks the names, not the kernel."""
    if isinstance(spec, Point):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        ns, iface = spec
        plan.check_kernel_name(ns, "namespace")
        plan.check_kernel_name(iface, "interface")
        return Point(ns, iface, f"{ns}:{iface}")
    if not isinstance(spec, str) or spec.count(":") != 1 or spec.startswith(":") or spec.endswith(":"):
        raise BadName(f"capture point {spec!r} is not NAMESPACE:INTERFACE: write it like "
                      f"netns0:ceth0 or host:br0 (namespace role within the lab)")
    role, iface = spec.split(":")
    plan.check_kernel_name(iface, "interface")
    return Point(plan.namespace_name(plan.lab_name(lab), role), iface, spec)
