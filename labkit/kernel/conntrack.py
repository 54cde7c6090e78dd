"""The connection tracking table of a namespace, read through pyroute2's ctnetlink messages.

`connections(ns)` lists the IPv4 entries as `Connection`s: the tuple the first packet had
(`original`), the tuple answers come back with (`reply`: after NAT, its destination is the
translated source), the state, and whether SNAT/DNAT applied. The request is pyroute2's
`nfct_msg` and the replies are parsed by pyroute2; the socket is a plain NETLINK_NETFILTER
one opened inside the namespace, as `Netlink` does for rtnetlink: pyroute2's Conntrack runs
an event loop of its own and fails inside a running one (every notebook has one).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from . import netns
from ..errors import KernelError

REPLY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Ends:
    """One direction of a connection: addresses, and ports (None for ICMP)."""
    src: str
    dst: str
    sport: int | None
    dport: int | None


@dataclass(frozen=True)
class Connection:
    """A conntrack entry. `state`: TCP's ("SYN_SENT", "ESTABLISHED", "TIME_WAIT", ...), else
    "UNREPLIED", "REPLIED" or "ASSURED" (replies seen in both directions long enough)."""
    proto: str
    original: Ends
    reply: Ends
    state: str
    snat: bool
    dnat: bool


def connections(ns: str) -> list[Connection]:
    """Every IPv4 conntrack entry of namespace `ns` (kernel name); [] if nothing is tracked
    (the kernel tracks only in a namespace whose netfilter rules need it, e.g. NAT)."""
    from pyroute2.netlink import NETLINK_NETFILTER, NLM_F_DUMP, NLM_F_REQUEST, SOL_NETLINK
    from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_CTNETLINK
    from pyroute2.netlink.nfnetlink.nfctsocket import IPCTNL_MSG_CT_GET, nfct_msg

    from . import messages
    with netns.entered(ns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_NETFILTER)
    with sock:
        sock.setsockopt(SOL_NETLINK, messages.NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, messages.NETLINK_EXT_ACK, 1)
        sock.settimeout(REPLY_TIMEOUT)
        request = nfct_msg()
        request["nfgen_family"] = socket.AF_INET
        request["header"] = {"type": (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
                             "flags": NLM_F_REQUEST | NLM_F_DUMP, "sequence_number": 1}
        request.encode()
        try:
            sock.send(request.data)
            return [_connection(msg) for msg in _replies(sock, ns)]
        except OSError as e:
            raise KernelError(f"reading the conntrack table in namespace {ns!r} failed: "
                              f"{e.strerror} (errno {e.errno})") from None


def _replies(sock: socket.socket, ns: str):
    """Yield the entries (pyroute2 nfct_msg, decoded) of the dump until its end."""
    from pyroute2.netlink import NLMSG_DONE, NLMSG_ERROR

    from . import messages
    parser = _parser()
    while True:
        try:
            data = sock.recv(1 << 17)
        except TimeoutError:
            raise KernelError(f"the kernel did not answer a conntrack dump in namespace {ns!r} "
                              f"within {REPLY_TIMEOUT} s") from None
        for msg in parser.parse(data):
            kind = msg["header"]["type"]
            if kind == NLMSG_ERROR:
                code, reason = messages.error(msg)
                if code:
                    raise KernelError(f"reading the conntrack table in namespace {ns!r} failed: "
                                      f"{os.strerror(code)} (errno {code})"
                                      + (f": {reason}" if reason else ""))
                return
            if kind == NLMSG_DONE:
                return
            yield msg


def _parser():
    """pyroute2's Marshal for ctnetlink entries (acks read as messages.Ack)."""
    from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_CTNETLINK
    from pyroute2.netlink.nfnetlink.nfctsocket import IPCTNL_MSG_CT_NEW, nfct_msg

    from . import messages
    parser = messages.Replies()
    parser.msg_map = {(NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW: nfct_msg}
    return parser


def _ends(tuple_nla) -> tuple[Ends, int]:
    ip, proto = tuple_nla.get_attr("CTA_TUPLE_IP"), tuple_nla.get_attr("CTA_TUPLE_PROTO")
    number = proto.get_attr("CTA_PROTO_NUM")
    return Ends(ip.get_attr("CTA_IP_V4_SRC"), ip.get_attr("CTA_IP_V4_DST"),
                proto.get_attr("CTA_PROTO_SRC_PORT"), proto.get_attr("CTA_PROTO_DST_PORT")), number


def _connection(msg) -> Connection:
    from pyroute2.netlink.nfnetlink.nfctsocket import (IP_PROTOCOLS, IPS_ASSURED, IPS_DST_NAT,
                                                       IPS_SEEN_REPLY, IPS_SRC_NAT,
                                                       TCP_CONNTRACK_TO_NAME)
    original, number = _ends(msg.get_attr("CTA_TUPLE_ORIG"))
    reply, _ = _ends(msg.get_attr("CTA_TUPLE_REPLY"))
    status = msg.get_attr("CTA_STATUS") or 0
    info = msg.get_attr("CTA_PROTOINFO")
    tcp = info.get_attr("CTA_PROTOINFO_TCP") if info is not None else None
    if tcp is not None:
        state = TCP_CONNTRACK_TO_NAME.get(tcp.get_attr("CTA_PROTOINFO_TCP_STATE"), "NONE")
    else:
        state = ("ASSURED" if status & IPS_ASSURED else
                 "REPLIED" if status & IPS_SEEN_REPLY else "UNREPLIED")
    return Connection(IP_PROTOCOLS.get(number, str(number)).lower(), original, reply, state,
                      bool(status & IPS_SRC_NAT), bool(status & IPS_DST_NAT))
