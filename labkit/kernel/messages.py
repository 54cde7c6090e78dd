"""rtnetlink messages, made and read by pyroute2's classes; labkit's `Netlink` sends them.

Requests are pyroute2 messages (ifinfmsg, ifaddrmsg, rtmsg, ndmsg, nsidmsg) without their
netlink header: `Netlink` adds type, flags and sequence number and encodes them. Replies are
parsed by `Replies` (pyroute2's rtnetlink Marshal) and turned into plain dicts here.
Importing this module imports pyroute2 (~0.1 s): `Netlink` does so on first use only.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

from pyroute2.netlink import (NETLINK_EXT_ACK, NLM_F_ACK, NLM_F_APPEND, NLM_F_CAPPED,
                              NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL, NLM_F_MULTI,
                              NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, SOL_NETLINK,
                              nlmsg, nlmsgerr)
from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_GETADDR,
                                   RTM_GETLINK, RTM_GETNEIGH, RTM_GETNSID, RTM_GETROUTE,
                                   RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, rt_proto, rt_scope,
                                   rt_type)
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT, NUD_VALUES, ndmsg
from pyroute2.netlink.rtnl.nsidmsg import nsidmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

NETLINK_CAP_ACK = 10                  # netlink(7); the few numbers pyroute2 does not name
RT_TABLE_MAIN = 254                   # rtnetlink(7)
RTEXT_FILTER_SKIP_STATS = 1 << 3      # IFLA_EXT_MASK bit: dumps without the counters
RTPROT_KERNEL, RTPROT_STATIC = rt_proto["kernel"], rt_proto["static"]

__all__ = [  # pyroute2's numbers that Netlink uses, then this module's own names
    "NETLINK_EXT_ACK", "NLM_F_ACK", "NLM_F_APPEND", "NLM_F_CREATE", "NLM_F_DUMP", "NLM_F_ECHO", "NLM_F_EXCL",
    "NLM_F_MULTI", "NLM_F_REQUEST", "NLMSG_DONE", "NLMSG_ERROR", "NLMSG_NOOP", "SOL_NETLINK",
    "RTM_DELADDR", "RTM_DELLINK", "RTM_DELROUTE", "RTM_GETADDR", "RTM_GETLINK", "RTM_GETNEIGH",
    "RTM_GETNSID", "RTM_GETROUTE", "RTM_NEWADDR", "RTM_NEWLINK", "RTM_NEWROUTE", "RTM_NEWNEIGH",
    "RTM_DELNEIGH",
    "NETLINK_CAP_ACK", "RT_TABLE_MAIN", "RTPROT_KERNEL", "RTPROT_STATIC", "Ack", "Replies",
    "error", "noop", "link_request", "link_query", "new_link", "veth_peer", "set_link", "link",
    "nsid_query", "nsid", "address_query", "address_request", "address", "route_query",
    "route_request", "route", "neighbour_query", "state_names", "neighbour", "fdb_entry",
    "family_of", "vxlan_data", "fdb_request", "set_mtu",
]


class Ack(nlmsgerr):
    """NLMSG_ERROR as a NETLINK_CAP_ACK socket gets it: the error, the request's header (not
    the whole request), then the kernel's reason (NLMSGERR_ATTR_MSG) if the flags carry
    NLM_F_ACK_TLVS. pyroute2 0.9's nlmsgerr reads the reason right after the error, inside
    that header, and its Marshal decodes the whole request there (struct.error)."""

    __slots__ = ()
    fields = (("error", "i"), ("request_length", "I"), ("request_type", "H"),
              ("request_flags", "H"), ("request_seq", "I"), ("request_pid", "I"))


class Replies(MarshalRtnl):
    """pyroute2's rtnetlink parser; acks and errors are read as `Ack` (see there)."""

    def parse_one_message(self, key, flags, sequence_number, data, offset, length):
        if key == NLMSG_ERROR and flags & NLM_F_CAPPED:
            cls = Ack
        elif key in (NLMSG_ERROR, NLMSG_DONE):
            cls = nlmsgerr
        else:
            cls = self.msg_map.get(key, nlmsg)
        msg = cls(data, offset=offset)
        msg.decode()
        return msg


def error(msg: nlmsgerr) -> tuple[int, str]:
    """(errno, the kernel's reason or "") of an NLMSG_ERROR reply (errno 0: an ack)."""
    code = -msg["error"]
    return code, (msg.get_attr("NLMSGERR_ATTR_MSG") or "") if code else ""


def noop() -> nlmsg:
    """NLMSG_NOOP: asked for an ack, it closes a batch."""
    return nlmsg()


def _attrs(msg) -> dict:
    """Attribute name -> value, each decoded when read (pyroute2's get_attr scans the list)."""
    slots = {}
    for slot in msg["attrs"]:
        slots.setdefault(slot.name, slot)
    return slots


def _value(slots: dict, name: str):
    slot = slots.get(name)
    return None if slot is None else slot.value


# -- links ---------------------------------------------------------------------------------
def link_request(index: int = 0, flags: int = 0, change: int = 0, attrs=()) -> ifinfmsg:
    msg = ifinfmsg()
    msg["family"], msg["index"], msg["flags"], msg["change"] = socket.AF_UNSPEC, index, flags, change
    msg["attrs"] = list(attrs)
    return msg


def link_query(name: str | None = None) -> ifinfmsg:
    """RTM_GETLINK body: every link (a dump), or the one named; without counters."""
    attrs = [("IFLA_IFNAME", name)] if name else []
    return link_request(attrs=attrs + [("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)])


def new_link(name: str, mac: str | None, kind: str, up: bool, master: int | None = None,
             data=None) -> ifinfmsg:
    """RTM_NEWLINK body creating link `name` of `kind` (IFLA_INFO_DATA `data` if given)."""
    attrs = [("IFLA_IFNAME", name)]
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if master:
        attrs.append(("IFLA_MASTER", master))
    info = [("IFLA_INFO_KIND", kind)] + ([("IFLA_INFO_DATA", data)] if data else [])
    attrs.append(("IFLA_LINKINFO", {"attrs": info}))
    flags = IFF_UP if up else 0
    return link_request(flags=flags, change=flags, attrs=attrs)


def veth_peer(name: str, mac: str | None, netns_fd: int | None) -> dict:
    """IFLA_INFO_DATA of a veth: its peer's name, MAC and namespace (an open fd)."""
    attrs = [("IFLA_IFNAME", name)]
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if netns_fd is not None:
        attrs.append(("IFLA_NET_NS_FD", netns_fd))
    return {"attrs": [("VETH_INFO_PEER", {"attrs": attrs})]}


def set_link(index: int, mac: str | None, master: int | None, up: bool | None) -> ifinfmsg:
    """RTM_NEWLINK body changing link `index`: MAC, master (0: none), state (None: unchanged)."""
    attrs = []
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if master is not None:
        attrs.append(("IFLA_MASTER", master))
    change = 0 if up is None else IFF_UP
    return link_request(index, IFF_UP if up else 0, change, attrs)


@dataclass(frozen=True)
class Link:
    """A link as the kernel reports it (`Netlink.links()`). `kind` None: a link without
    link info (lo); `master` and `link` are ifindexes (None: none); `link` is a veth's peer,
    in this namespace if `link_netnsid` is None, else in the namespace of that id."""
    index: int | None
    name: str
    kind: str | None = None
    mac: str | None = None
    up: bool = False
    master: int | None = None
    link: int | None = None
    link_netnsid: int | None = None
    mtu: int | None = None
    vxlan: tuple | None = None        # a VXLAN device's (VNI, UDP port, local address, learning)


def link(msg: ifinfmsg) -> Link:
    """A link as `Netlink.links()` gives it."""
    a = _attrs(msg)
    info = _value(a, "IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    vxlan = None
    if kind == "vxlan":
        data = info.get_attr("IFLA_INFO_DATA")
        if data is not None:
            vxlan = (data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_PORT"),
                     data.get_attr("IFLA_VXLAN_LOCAL"), bool(data.get_attr("IFLA_VXLAN_LEARNING")))
    return Link(msg["index"], _value(a, "IFLA_IFNAME"), kind,
                _value(a, "IFLA_ADDRESS"), bool(msg["flags"] & IFF_UP), _value(a, "IFLA_MASTER"),
                _value(a, "IFLA_LINK"), _value(a, "IFLA_LINK_NETNSID"), _value(a, "IFLA_MTU"), vxlan)


def vxlan_data(vni: int, port: int, local: str | None, learning: bool = False) -> dict:
    """IFLA_INFO_DATA of a VXLAN device: its VNI, UDP port, local underlay address, learning."""
    attrs = [("IFLA_VXLAN_ID", vni), ("IFLA_VXLAN_PORT", port),
             ("IFLA_VXLAN_LEARNING", 1 if learning else 0)]
    if local:
        attrs.append(("IFLA_VXLAN_LOCAL", local))
    return {"attrs": attrs}


def set_mtu(index: int, mtu: int) -> ifinfmsg:
    """RTM_NEWLINK body setting link `index`'s MTU."""
    return link_request(index, attrs=[("IFLA_MTU", mtu)])


def nsid_query(netns_fd: int) -> nsidmsg:
    """RTM_GETNSID body: the id this namespace gives the namespace open as `netns_fd`."""
    msg = nsidmsg()
    msg["attrs"] = [("NETNSA_FD", netns_fd)]
    return msg


def nsid(msg: nsidmsg) -> int | None:
    """The id in an RTM_NEWNSID reply; None if none is assigned (the kernel sends -1)."""
    value = msg.get_attr("NETNSA_NSID")
    return None if value is None or value >= 1 << 31 else value


# -- addresses -----------------------------------------------------------------------------
def family_of(*addresses: str | None) -> int:
    """AF_INET6 if any of `addresses` (CIDRs or bare, None skipped) is IPv6, else AF_INET."""
    return socket.AF_INET6 if any(a and ":" in a for a in addresses) else socket.AF_INET


def address_query() -> ifaddrmsg:
    """RTM_GETADDR body: addresses of both families (a dump)."""
    msg = ifaddrmsg()
    msg["family"] = socket.AF_UNSPEC
    return msg


def address_request(index: int, cidr: str) -> ifaddrmsg:
    """RTM_NEWADDR / RTM_DELADDR body for `cidr` (IPv4, or IPv6 without duplicate address
    detection: usable at once) on link `index`."""
    addr, length = cidr.split("/")
    family = family_of(addr)
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["scope"], msg["index"] = (
        family, int(length), rt_scope["universe"], index)
    if family == socket.AF_INET6:
        msg["flags"] = IFA_F_NODAD
        msg["attrs"] = [("IFA_ADDRESS", addr)]
    else:
        msg["attrs"] = [("IFA_LOCAL", addr), ("IFA_ADDRESS", addr)]
    return msg


def address(msg: ifaddrmsg) -> tuple[int, str] | None:
    """(link index, "a.b.c.d/len" or "fd00::10/64") of an IPv4 address or a global IPv6 one;
    None for others (IPv6 link-local and loopback addresses are the kernel's own)."""
    if msg["family"] == socket.AF_INET6:
        if msg["scope"] != rt_scope["universe"]:
            return None
        return msg["index"], f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"
    if msg["family"] != socket.AF_INET:
        return None
    a = _attrs(msg)
    return msg["index"], f"{_value(a, 'IFA_ADDRESS') or _value(a, 'IFA_LOCAL')}/{msg['prefixlen']}"


# -- routes --------------------------------------------------------------------------------
def route_query(family: int = socket.AF_INET) -> rtmsg:
    msg = rtmsg()
    msg["family"] = family
    return msg


def route_request(dst: str, gateway: str | None, oif: int | None, creating: bool,
                  family: int | None = None) -> rtmsg:
    """RTM_NEWROUTE (`creating`: static, universe, unicast) or RTM_DELROUTE body, main table;
    the family is the addresses' (IPv4 for a "default" via a device unless `family` says)."""
    family = family or family_of(dst if dst != "default" else None, gateway)
    addr, length = ("0.0.0.0", "0") if dst == "default" else dst.split("/")
    msg = rtmsg()
    msg["family"], msg["dst_len"], msg["table"] = family, int(length), RT_TABLE_MAIN
    if creating:
        msg["proto"], msg["scope"], msg["type"] = RTPROT_STATIC, rt_scope["universe"], rt_type["unicast"]
    else:
        msg["proto"], msg["scope"], msg["type"] = rt_proto["unspec"], rt_scope["nowhere"], rt_type["unspec"]
    attrs = []
    if int(length):
        attrs.append(("RTA_DST", addr))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    msg["attrs"] = attrs
    return msg


def route(msg: rtmsg) -> dict | None:
    """A unicast route of the main table (IPv4, or IPv6 but not link-local) as
    `Netlink.routes()` gives it (with its "family"); None for others."""
    a = _attrs(msg)
    if msg["family"] not in (socket.AF_INET, socket.AF_INET6) \
            or (_value(a, "RTA_TABLE") or msg["table"]) != RT_TABLE_MAIN:
        return None
    if msg["family"] == socket.AF_INET6 and (msg["type"] != rt_type["unicast"] or str(
            _value(a, "RTA_DST") or "").startswith("fe80:")):
        return None
    dst = _value(a, "RTA_DST")
    return {
        "dst": f"{dst}/{msg['dst_len']}" if dst else "default",
        "gateway": _value(a, "RTA_GATEWAY"),
        "dev": _value(a, "RTA_OIF"),
        "proto": msg["proto"],
        "src": _value(a, "RTA_PREFSRC"),
        "family": msg["family"],
    }


# -- neighbours and the bridge forwarding database ----------------------------------------
def neighbour_query(family: int) -> ndmsg:
    """RTM_GETNEIGH body: AF_INET for the ARP table, AF_BRIDGE for bridges' FDB."""
    msg = ndmsg()
    msg["family"] = family
    return msg


def state_names(state: int) -> str:
    """NUD state as iproute2 names it: "REACHABLE", "STALE", ... ("NONE" for 0)."""
    names = [name[4:] for bit, name in sorted(NUD_VALUES.items()) if bit and state & bit]
    return ",".join(names) or "NONE"


def neighbour(msg: ndmsg) -> dict:
    """An ARP (or NDP) table entry: ifindex, ip, mac (None until resolved), state (e.g. "REACHABLE")."""
    a = _attrs(msg)
    return {"ifindex": msg["ifindex"], "ip": _value(a, "NDA_DST"),
            "mac": _value(a, "NDA_LLADDR"), "state": state_names(msg["state"])}


def fdb_entry(msg: ndmsg) -> dict:
    """A bridge FDB entry: ifindex (the port), master (the bridge's index; None for a port's
    own "self" entries), mac, permanent (else learned), vlan (None if untagged)."""
    a = _attrs(msg)
    return {"ifindex": msg["ifindex"], "master": _value(a, "NDA_MASTER"),
            "mac": _value(a, "NDA_LLADDR"),
            "permanent": bool(msg["state"] & (NUD_PERMANENT | NUD_NOARP)),
            "vlan": _value(a, "NDA_VLAN"), "dst": _value(a, "NDA_DST")}


def fdb_request(index: int, mac: str, dst: str) -> ndmsg:
    """RTM_NEWNEIGH / RTM_DELNEIGH body of a VXLAN device's own FDB entry: frames for `mac`
    (00:00:00:00:00:00: every frame to flood) go to remote VTEP `dst` (bridge fdb ... self)."""
    msg = ndmsg()
    msg["family"], msg["ifindex"], msg["state"], msg["flags"] = socket.AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF
    msg["attrs"] = [("NDA_LLADDR", mac), ("NDA_DST", dst)]
    return msg
