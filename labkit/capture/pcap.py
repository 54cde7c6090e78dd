"""libpcap's two jobs, done in labkit: decode frames and keep them in files; compile filters.

- `headers(frame)` decodes Ethernet / ARP / IPv4 / IPv6 / ICMP / TCP / UDP with `struct`
  (no scapy; fast enough for 100,000 frames), with a `key` that identifies one packet across
  NAT and routing (see labkit.capture.packets).
- `write_pcap` / `write_pcapng` / `read_pcap`: Ethernet (LINKTYPE_ETHERNET) files that tshark,
  tcpdump and Wireshark read. Classic pcap has no notion of interface, so a merged file loses
  the capture point; pcapng keeps it (one interface block per point, named like
  "netns0:ceth0") and the direction of each frame.
- `compile_filter(expr)`: a tcpdump expression as classic BPF for SO_ATTACH_FILTER.
"""
from __future__ import annotations

import ctypes
import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from ..errors import BadValue, MissingTool

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_US = 0xA1B2C3D4
DEFAULT_SNAPLEN = 262144

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
    lacks are None. `key` identifies the packet across NAT and routing (module docstring).
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


def compile_filter(expr: str) -> bytes:
    """Compile a tcpdump filter expression for Ethernet into SO_ATTACH_FILTER instructions
    (libpcap through ctypes; `tcpdump -ddd` if libpcap cannot be loaded). BadValue if invalid."""
    insns = _compile_libpcap(expr)
    if insns is None:
        insns = _compile_tcpdump(expr)
    return b"".join(struct.pack("HBBI", *i) for i in insns)


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


def _compile_libpcap(expr: str) -> list[tuple] | None:
    lib = None
    for name in ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    handle = lib.pcap_open_dead(LINKTYPE_ETHERNET, DEFAULT_SNAPLEN)
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, 0xFFFFFFFF) != 0:
            why = lib.pcap_geterr(handle).decode(errors="replace")
            raise BadValue(f"capture filter {expr!r} is not valid: {why} (write it as for "
                           f"tcpdump, e.g. 'icmp or arp', 'udp port 53', 'host 172.18.0.10')")
        insns = [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                  prog.bf_insns[i].k) for i in range(prog.bf_len)]
        lib.pcap_freecode(ctypes.byref(prog))
        return insns
    finally:
        lib.pcap_close(handle)


def _compile_tcpdump(expr: str) -> list[tuple]:
    import subprocess
    try:
        out = subprocess.run(["tcpdump", "-ddd", "-y", "EN10MB", expr], capture_output=True,
                             text=True, timeout=30)
    except FileNotFoundError:
        raise MissingTool("a capture filter needs libpcap or tcpdump: apt-get install "
                          "tcpdump (or capture without a filter)") from None
    if out.returncode != 0:
        raise BadValue(f"capture filter {expr!r} is not valid: {out.stderr.strip()}")
    lines = out.stdout.split("\n")
    return [tuple(int(x) for x in line.split()) for line in lines[1:1 + int(lines[0])]]


class Record(NamedTuple):
    """One frame of a capture file: time in ns since the epoch, bytes kept, length on the wire."""
    time_ns: int
    data: bytes
    wirelen: int
    interface: str = ""
    direction: str = ""


def write_pcap(path: str, records: Iterable[Record], snaplen: int = DEFAULT_SNAPLEN) -> int:
    """Write `records` to classic pcap `path` with nanosecond timestamps; returns frames written."""
    n = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for r in records:
            sec, nsec = divmod(r.time_ns, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, nsec, len(r.data), max(r.wirelen, len(r.data))))
            f.write(r.data)
            n += 1
    return n


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng(path: str, records: Iterable[Record], snaplen: int = DEFAULT_SNAPLEN) -> int:
    """Write `records` to pcapng `path`: one interface per distinct `interface` name, in order
    of first appearance, nanosecond timestamps and inbound/outbound flags; returns frames."""
    interfaces: dict[str, int] = {}
    n = 0
    with open(path, "wb") as f:
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(4, b"labkit") + _option(0, b"")
        f.write(_block(0x0A0D0D0A, shb))
        for r in records:
            idx = interfaces.get(r.interface)
            if idx is None:
                idx = interfaces[r.interface] = len(interfaces)
                opts = (_option(2, r.interface.encode()) if r.interface else b"")
                opts += _option(9, bytes([9])) + _option(0, b"")   # if_tsresol: 10^-9 s
                f.write(_block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + opts))
            hi, lo = divmod(r.time_ns, 1 << 32)
            pad = b"\0" * ((-len(r.data)) % 4)
            flags = {"in": 1, "out": 2}.get(r.direction, 0)
            opts = (_option(2, struct.pack("<I", flags)) + _option(0, b"")) if flags else b""
            body = struct.pack("<IIIII", idx, hi, lo, len(r.data), max(r.wirelen, len(r.data)))
            f.write(_block(6, body + r.data + pad + opts))
            n += 1
    return n


def read_pcap(path: str) -> list[Record]:
    """Read a classic pcap file (either byte order, us or ns timestamps) into records."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise BadValue(f"cannot read {path}: {e.strerror}") from None
    if len(raw) < 24:
        raise BadValue(f"{path} is not a pcap file (too short)")
    for endian in "<>":
        magic = struct.unpack_from(endian + "I", raw, 0)[0]
        if magic in (PCAP_MAGIC_NS, PCAP_MAGIC_US):
            break
    else:
        raise BadValue(f"{path} is not a classic pcap file (pcapng? read it with tshark)")
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    records, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", raw, off)
        off += 16
        records.append(Record(sec * 1_000_000_000 + frac * scale, raw[off:off + incl], orig))
        off += incl
    return records
