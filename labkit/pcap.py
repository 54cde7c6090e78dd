"""Capture files: write classic pcap (nanosecond) and pcapng, read classic pcap back.

Both are Ethernet (LINKTYPE_ETHERNET) files that tshark, tcpdump and Wireshark read. Classic
pcap has no notion of interface, so a merged file loses the capture point; pcapng keeps it
(one interface block per point, named like "netns0:ceth0") and the direction of each frame.
"""
from __future__ import annotations

import struct
from typing import Iterable, NamedTuple

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_US = 0xA1B2C3D4
DEFAULT_SNAPLEN = 262144


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
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 24:
        raise ValueError(f"{path} is not a pcap file (too short)")
    for endian in "<>":
        magic = struct.unpack_from(endian + "I", raw, 0)[0]
        if magic in (PCAP_MAGIC_NS, PCAP_MAGIC_US):
            break
    else:
        raise ValueError(f"{path} is not a classic pcap file (pcapng? read it with tshark)")
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    records, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", raw, off)
        off += 16
        records.append(Record(sec * 1_000_000_000 + frac * scale, raw[off:off + incl], orig))
        off += incl
    return records
