"""VXLAN devices and their flood entries, and MTUs, over a `Netlink` socket.

`add_vxlan(nl, ...)` is `ip link add NAME type vxlan id VNI dstport PORT local ADDR
nolearning` (with `master` and `up` in the same request); `add_flood(nl, NAME, DST)` is
`bridge fdb append 00:00:00:00:00:00 dev NAME dst DST`, as flannel's vxlan backend programs its
peers; `set_mtu(nl, NAME, MTU)` is `ip link set NAME mtu MTU`. They queue in `nl.batch()`
like Netlink's own calls; "already there" and "already gone" are not errors. Undo: a
device goes with `nl.delete_link(NAME)`, a flood entry with `del_flood`.
"""
from __future__ import annotations

import errno

from .netlink import Netlink, _load

FLOOD = "00:00:00:00:00:00"      # the FDB's "every frame with no entry of its own" MAC


def _m():
    _load()
    from . import messages
    return messages


def add_vxlan(nl: Netlink, name: str, mac: str | None, vni: int, port: int, local: str | None, *,
              master: str | None = None, up: bool = False, mtu: int | None = None) -> None:
    """Create VXLAN device `name` (VNI `vni`, UDP `port`, `local` underlay address, learning
    off: remote VTEPs come only from its flood entries). Undo: nl.delete_link(name)."""
    m = _m()
    master_index = nl._require(master) if master else None
    msg = m.new_link(name, mac, "vxlan", up, master_index, m.vxlan_data(vni, port, local))
    if mtu:
        msg["attrs"].append(("IFLA_MTU", mtu))
    nl._do(f"creating VXLAN device {name} (VNI {vni})", m.RTM_NEWLINK,
           m.NLM_F_CREATE | m.NLM_F_EXCL, msg)
    nl._index.pop(name, None)


def set_mtu(nl: Netlink, name: str, mtu: int) -> None:
    """Set link `name`'s MTU."""
    m = _m()
    nl._do(f"setting {name} mtu {mtu}", m.RTM_NEWLINK, 0, m.set_mtu(nl._require(name), mtu))


def add_flood(nl: Netlink, name: str, dst: str, mac: str = FLOOD) -> None:
    """VXLAN device `name` sends frames for `mac` (FLOOD: broadcast, unknown and multicast
    ones) to remote VTEP `dst` too; a no-op if the entry is there. Undo: del_flood."""
    m = _m()
    nl._do(f"appending fdb {mac} dst {dst} to {name}", m.RTM_NEWNEIGH,
           m.NLM_F_CREATE | m.NLM_F_APPEND, m.fdb_request(nl._require(name), mac, dst),
           ok=(errno.EEXIST,))


def del_flood(nl: Netlink, name: str, dst: str, mac: str = FLOOD) -> None:
    """Remove VXLAN device `name`'s FDB entry for `mac` to `dst`; a no-op if it is gone."""
    m = _m()
    idx = nl.index(name)
    if idx is not None:
        nl._do(f"deleting fdb {mac} dst {dst} from {name}", m.RTM_DELNEIGH, 0,
               m.fdb_request(idx, mac, dst), ok=(errno.ENOENT, errno.ENODEV))


def floods(nl: Netlink, name: str) -> list[str]:
    """The remote VTEPs device `name` floods to (its FLOOD entries' dst), sorted."""
    idx = nl.index(name)
    return sorted(e["dst"] for e in nl.fdb() if e["ifindex"] == idx and e["dst"] and e["mac"] == FLOOD)
