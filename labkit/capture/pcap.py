"""Capture files and capture filters: scapy where it serves, labkit's own code where scapy was
measured worse for the job (benchmarks/README.md, "Where labkit keeps its own code").

- `write_pcap` / `read_pcap`: classic pcap through scapy's RawPcapWriter and RawPcapReader
  (LINKTYPE_ETHERNET, nanosecond timestamps: byte for byte the files labkit wrote before).
  Classic pcap has no notion of interface, so a merged file loses the capture point.
- `write_pcapng`: labkit's own writer; one interface block per point, named like
  "netns0:ceth0", the kernel's nanosecond timestamps and each frame's direction.
- `compile_filter(expr)`: a tcpdump expression compiled by scapy (libpcap through ctypes) as
  classic BPF for SO_ATTACH_FILTER.

scapy is imported when a file is written or read or a filter compiled, never at import. It
reads interfaces and routes at import and cannot follow a setns (scapy#3467): labkit never
sniffs with it, and nothing here depends on the namespace scapy saw.
"""
from __future__ import annotations

import struct
from typing import Iterable, NamedTuple

from ..errors import BadValue, MissingTool

LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 262144     # tcpdump's: a 64 KiB GSO frame on a veth is kept whole
BPF_RET_K = 0x06
FILTER_EXAMPLES = "write it as for tcpdump, e.g. 'icmp or arp', 'udp port 53', 'host 172.18.0.10'"


class Record(NamedTuple):
    """One frame of a capture file: time in ns since the epoch, bytes kept, length on the wire,
    and (pcapng only) the capture point's name and the direction ("in", "out" or "")."""
    time_ns: int
    data: bytes
    wirelen: int
    interface: str = ""
    direction: str = ""


def write_pcap(path: str, records: Iterable[Record], snaplen: int = DEFAULT_SNAPLEN) -> int:
    """Write `records` to classic pcap `path` (nanosecond timestamps, little-endian) with
    scapy's RawPcapWriter; returns frames written. OSError if the file cannot be made.

    100,000 frames: 0.12 s (labkit's former struct writer: 0.06 s, the same bytes); the
    difference is small next to the capture itself."""
    from scapy.utils import RawPcapWriter
    n = 0
    with RawPcapWriter(path, linktype=LINKTYPE_ETHERNET, nano=True, snaplen=snaplen,
                       endianness="<", bufsz=1 << 20) as w:
        w.write_header(None)       # write_packet() alone would leave it to close(), at the end
        for r in records:
            sec, nsec = divmod(r.time_ns, 1_000_000_000)
            w.write_packet(r.data, sec=sec, usec=nsec, wirelen=max(r.wirelen, len(r.data)))
            n += 1
    return n


def read_pcap(path: str) -> list[Record]:
    """Read a capture file into records with scapy's RawPcapReader: classic pcap (either byte
    order, us or ns timestamps) or pcapng (with each frame's interface name and direction).
    BadValue if the file cannot be read or is neither.

    Frames are read up to DEFAULT_SNAPLEN bytes: scapy's iterator would cut them at 65,535
    (scapy.data.MTU), so records come from `_read_packet(size)`, as scapy's own docs say."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapNgReader, RawPcapReader
    try:
        with open(path, "rb") as f:
            try:
                reader = RawPcapReader(f)       # falls back to RawPcapNgReader by magic
            except Scapy_Exception as e:
                raise BadValue(f"{path} is not a pcap or pcapng file ({e}); give a file "
                               f"written by labkit, tcpdump -w or Wireshark") from None
            ng = isinstance(reader, RawPcapNgReader)
            records = []
            while True:
                try:
                    data, meta = reader._read_packet(size=DEFAULT_SNAPLEN)
                except EOFError:
                    break
                if ng:
                    stamp = ((meta.tshigh << 32) | meta.tslow) * 1_000_000_000 // meta.tsresol
                    name = meta.ifname.decode(errors="replace") if meta.ifname else ""
                    way = {1: "in", 2: "out"}.get(meta.direction, "")
                    records.append(Record(stamp, data, meta.wirelen, name, way))
                else:
                    stamp = meta.sec * 1_000_000_000 + meta.usec * (1 if reader.nano else 1000)
                    records.append(Record(stamp, data, meta.wirelen))
            return records
    except OSError as e:
        raise BadValue(f"cannot read {path}: {e.strerror or e}") from None


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng(path: str, records: Iterable[Record], snaplen: int = DEFAULT_SNAPLEN) -> int:
    """Write `records` to pcapng `path`: one interface per distinct `interface` name, in order
    of first appearance, nanosecond timestamps and inbound/outbound flags; returns frames.

    labkit's own writer, kept over scapy's RawPcapNgWriter, which names interfaces only through
    its private `_write_packet`, writes microsecond timestamps (the kernel's nanoseconds lost)
    and adds an unnamed interface #0 before the named ones."""
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


def compile_filter(expr: str, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """A tcpdump filter expression for Ethernet as SO_ATTACH_FILTER instructions, compiled by
    scapy's compile_filter (libpcap through ctypes; tcpdump itself is not needed). BadValue
    if the expression is invalid, MissingTool without libpcap.

    scapy compiles for a snap length of 65,535 (scapy.data.MTU): the program labkit compiled
    with libpcap before, but for the accept returns (checked on five filters); those are set
    to `snaplen`, so a GSO frame over 65,535 bytes on a veth is kept whole, as by tcpdump."""
    try:
        from scapy.arch.common import compile_filter as scapy_compile, free_filter
        from scapy.data import MTU
        from scapy.error import Scapy_Exception
    except ImportError:
        raise MissingTool("a capture filter needs scapy: pip install scapy (or capture "
                          "without a filter)") from None
    try:
        program = scapy_compile(expr, linktype=LINKTYPE_ETHERNET)
    except ImportError:       # scapy: "libpcap is not available. Cannot compile filter !"
        raise MissingTool("a capture filter needs libpcap: apt-get install libpcap0.8 "
                          "(tcpdump brings it too), or capture without a filter") from None
    except Scapy_Exception as e:    # "Failed to compile filter expression '...' (why)"
        why = str(e).rsplit(" (", 1)[-1].rstrip(")") if str(e).endswith(")") else str(e)
        raise BadValue(f"capture filter {expr!r} is not valid: {why} ({FILTER_EXAMPLES})") from None
    try:
        out = []
        for i in range(program.bf_len):
            insn = program.bf_insns[i]
            k = insn.k & 0xFFFFFFFF
            if insn.code == BPF_RET_K and k == MTU:
                k = snaplen
            out.append(struct.pack("HBBI", insn.code, insn.jt, insn.jf, k))
    finally:
        free_filter(program)
    return b"".join(out)
