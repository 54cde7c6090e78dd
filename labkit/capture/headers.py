"""Frame headers decoded by labkit: Ethernet / ARP / IPv4 / IPv6 / ICMP / TCP / UDP, and the key
that recognises one packet at every capture point across NAT and routing.

Kept in labkit rather than scapy because a capture is decoded whole (every table, filter and
path reads every frame), and scapy's dissection is about 20 times slower a frame
(benchmarks/README.md). `Packet.scapy()` dissects one frame with scapy when a student asks.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

ETH_IPV4, ETH_ARP, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8
IPPROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 2: "igmp", 47: "gre", 132: "sctp"}
ICMP_TYPES = {0: "echo-reply", 3: "unreachable", 5: "redirect", 8: "echo-request",
              11: "time-exceeded"}
ICMP6_TYPES = {128: "echo-request", 129: "echo-reply", 133: "router-solicitation",
               134: "router-advertisement", 135: "neighbor-solicitation",
               136: "neighbor-advertisement", 1: "unreachable", 3: "time-exceeded"}
TCP_FLAGS = "FSRPAUEC"


def _ip4(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@dataclass(frozen=True)
class Headers:
    """What a frame says, decoded: addresses, ports, protocol and a one-line `info`.

    `proto` is "arp", "icmp", "tcp", "udp", "icmp6", another IP protocol's name or number,
    "ipv4"/"ipv6" when truncated, or "0x...." for other ethertypes. Fields that the frame
    lacks are None. `key` identifies the packet across NAT and routing (labkit.capture.paths).
    """
    src_mac: str | None
    dst_mac: str | None
    ethertype: int | None
    proto: str
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    ttl: int | None = None
    ip_id: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    tcp_flags: str | None = None
    length: int = 0
    info: str = ""
    key: tuple = field(default=(), repr=False, compare=False)

    def matches(self, *, src=None, dst=None, host=None, proto=None, port=None,
                sport=None, dport=None) -> bool:
        """True if every given criterion holds (host: src or dst; port: sport or dport)."""
        if proto is not None and self.proto != str(proto).lower():
            return False
        if src is not None and self.src != str(src):
            return False
        if dst is not None and self.dst != str(dst):
            return False
        if host is not None and str(host) not in (self.src, self.dst):
            return False
        if sport is not None and self.sport != int(sport):
            return False
        if dport is not None and self.dport != int(dport):
            return False
        if port is not None and int(port) not in (self.sport, self.dport):
            return False
        return True


def headers(frame: bytes) -> Headers:
    """Decode an Ethernet frame's headers (never raises: odd frames get proto "0x....")."""
    if len(frame) < 14:
        return Headers(None, None, None, "short", length=len(frame), info="truncated frame",
                       key=("raw", frame))
    dst_mac, src_mac = _mac(frame[0:6]), _mac(frame[6:12])
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    while ethertype in (ETH_VLAN, ETH_QINQ) and len(frame) >= off + 4:
        ethertype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    base = dict(src_mac=src_mac, dst_mac=dst_mac, ethertype=ethertype, length=len(frame))
    try:
        if ethertype == ETH_IPV4:
            return _ipv4(frame, off, base)
        if ethertype == ETH_ARP:
            return _arp(frame, off, base)
        if ethertype == ETH_IPV6:
            return _ipv6(frame, off, base)
    except (struct.error, ValueError, OSError):   # truncated: fall through to raw
        pass
    name = f"0x{ethertype:04x}"
    return Headers(proto=name, info=f"ethertype {name}", key=("raw", frame[off:]), **base)


def _arp(frame: bytes, off: int, base: dict) -> Headers:
    op = struct.unpack_from("!H", frame, off + 6)[0]
    sha, spa = frame[off + 8:off + 14], frame[off + 14:off + 18]
    tpa = frame[off + 24:off + 28]
    if len(tpa) < 4:
        raise struct.error("short arp")
    src, dst = _ip4(spa), _ip4(tpa)
    if op == 1:
        info = f"who-has {dst} tell {src}"
    elif op == 2:
        info = f"{src} is-at {_mac(sha)}"
    else:
        info = f"arp op {op}"
    return Headers(proto="arp", src=src, dst=dst, info=info,
                   key=("arp", frame[off:off + 28]), **base)


def _l4(proto_num: int, frame: bytes, off: int, end: int, six: bool) -> tuple[dict, str, tuple]:
    """Ports/ICMP fields, info text and the NAT-invariant part of the key."""
    name = IPPROTO.get(proto_num, str(proto_num))
    payload = frame[off:end]
    if proto_num in (6, 17) and len(payload) >= 4:
        sport, dport = struct.unpack_from("!HH", payload, 0)
        f = dict(sport=sport, dport=dport)
        if proto_num == 17:
            return f, f"{sport} > {dport} len={max(len(payload) - 8, 0)}", ("udp", payload[4:6], payload[8:])
        if len(payload) >= 14:
            seq, ack = struct.unpack_from("!II", payload, 4)
            hlen = (payload[12] >> 4) * 4
            bits = payload[13]
            flags = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i))
            f["tcp_flags"] = flags
            data = payload[hlen:]
            info = f"{sport} > {dport} [{flags}] seq={seq}" + (f" ack={ack}" if bits & 16 else "")
            info += f" len={len(data)}"
            return f, info, ("tcp", seq, ack, bits, data)
        return f, f"{sport} > {dport}", (name, payload[4:])
    if proto_num in (1, 58) and len(payload) >= 4:
        t, code = payload[0], payload[1]
        f = dict(icmp_type=t, icmp_code=code)
        tname = (ICMP6_TYPES if six else ICMP_TYPES).get(t, f"type {t}")
        echo = (128, 129) if six else (0, 8)
        if t in echo and len(payload) >= 8:
            ident, seq = struct.unpack_from("!HH", payload, 4)
            f.update(icmp_id=ident, icmp_seq=seq)
            return f, f"{tname} id={ident} seq={seq}", (name, t, code, seq, payload[8:])
        return f, tname + (f" code {code}" if code else ""), (name, t, code, payload[8:])
    return {}, name, (name, payload)


def _ipv4(frame: bytes, off: int, base: dict) -> Headers:
    vihl, _tos, total, ip_id, _frag, ttl, proto = struct.unpack_from("!BBHHHBB", frame, off)
    ihl = (vihl & 15) * 4
    src = _ip4(frame[off + 12:off + 16])
    dst = _ip4(frame[off + 16:off + 20])
    end = min(len(frame), off + total) if total else len(frame)
    fields, info, inv = _l4(proto, frame, off + ihl, end, False)
    return Headers(proto=IPPROTO.get(proto, str(proto)), src=src, dst=dst, ttl=ttl, ip_id=ip_id,
                   info=info, key=("ip", proto, ip_id, inv), **fields, **base)


def _ipv6(frame: bytes, off: int, base: dict) -> Headers:
    plen, nxt, hop = struct.unpack_from("!HBB", frame, off + 4)
    src = _ip6(frame[off + 8:off + 24])
    dst = _ip6(frame[off + 24:off + 40])
    end = min(len(frame), off + 40 + plen)
    fields, info, inv = _l4(nxt, frame, off + 40, end, True)
    return Headers(proto=IPPROTO.get(nxt, str(nxt)), src=src, dst=dst, ttl=hop, info=info,
                   key=("ip6", nxt, inv), **fields, **base)

