"""Frames that lessons, tests and benchmarks send, built with scapy: a TCP SYN, a burst of UDP.

    python -m labkit.capture.frames burst IFACE DST_MAC SRC DST N

sends N copies of one scapy-built Ethernet/IPv4/UDP frame (UDP port 40000 -> 9; copy i
carries i in its IP id and payload) out of IFACE with a raw packet socket, as fast as Python
can; run it inside a lab namespace (it prints the time of the first and of the last frame
sent, epoch seconds, one per line).

scapy is imported when a frame is built, not before. A burst sends copies of one frame built
with scapy (building each would delay a large burst by many seconds: benchmarks/README.md),
so it keeps its rate. Frames go out through labkit's own packet socket, never scapy's (scapy
cannot follow a setns, scapy#3467).
"""
from __future__ import annotations

import socket
import struct
import sys
import time

UDP_SPORT, UDP_DPORT = 40000, 9
UDP_FILLER = b"x" * 14          # after the 4-byte copy number: 18 bytes of payload


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`, by scapy (0 over a header that carries
    its own correct checksum)."""
    from scapy.utils import checksum as internet_checksum
    return internet_checksum(data)


def syn_frame(src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int,
              seq: int = 1) -> bytes:
    """An Ethernet frame carrying a TCP SYN from src:sport to dst:dport, checksums and all
    (the IP id is `seq` too, so a capture can tell probes apart)."""
    return bytes(syn_layers(src_mac, dst_mac, src, dst, sport, dport, seq))


def syn_layers(src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int,
               seq: int = 1):
    """The scapy layers of `syn_frame`, for a student to read: Ether()/IP()/TCP(flags="S")."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    return (Ether(src=src_mac, dst=dst_mac)
            / IP(src=src, dst=dst, id=seq & 0xFFFF, ttl=64)
            / TCP(sport=sport, dport=dport, seq=seq, flags="S", window=64240))


def udp_layers(src_mac: str, dst_mac: str, src: str, dst: str, i: int = 0):
    """The scapy layers of burst frame `i`: UDP 40000 -> 9 without a UDP checksum (0, allowed
    in IPv4), `i` in the IP id and in the first 4 payload bytes."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    return (Ether(src=src_mac, dst=dst_mac)
            / IP(src=src, dst=dst, id=i & 0xFFFF, ttl=64)
            / UDP(sport=UDP_SPORT, dport=UDP_DPORT, chksum=0)
            / (struct.pack("!I", i & 0xFFFFFFFF) + UDP_FILLER))


def udp_frames(src_mac: str, dst_mac: str, src: str, dst: str, n: int) -> list[bytes]:
    """`n` UDP frames, frame i the bytes of `udp_layers(..., i)`: copies of frame 0, built by
    scapy once, with the IP id, the IP checksum (updated as RFC 1624 says) and the copy
    number written in."""
    template = bytes(udp_layers(src_mac, dst_mac, src, dst, 0))
    ip = 14
    base = ~struct.unpack_from("!H", template, ip + 10)[0] & 0xFFFF   # checksum of id 0, undone
    frames = []
    frame = bytearray(template)
    for i in range(n):
        ident = i & 0xFFFF
        total = base + ident
        total = (total & 0xFFFF) + (total >> 16)
        struct.pack_into("!H", frame, ip + 4, ident)
        struct.pack_into("!H", frame, ip + 10, ~total & 0xFFFF)
        struct.pack_into("!I", frame, ip + 28, i & 0xFFFFFFFF)
        frames.append(bytes(frame))
    return frames


def send_burst(iface: str, dst_mac: str, src: str, dst: str, n: int) -> tuple[float, float]:
    """Send `n` UDP frames out of `iface` (in the calling thread's namespace); returns the
    epoch times of the first and the last send."""
    with open(f"/sys/class/net/{iface}/address") as f:
        src_mac = f.read().strip()
    frames = udp_frames(src_mac, dst_mac, src, dst, n)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.bind((iface, 0))
        first = time.time()
        for frame in frames:
            s.send(frame)
        return first, time.time()


def main(argv: list[str]) -> int:
    """`burst IFACE DST_MAC SRC DST N`: see the module docstring."""
    if len(argv) != 6 or argv[0] != "burst":
        print("usage: python -m labkit.capture.frames burst IFACE DST_MAC SRC DST N", file=sys.stderr)
        return 2
    first, last = send_burst(argv[1], argv[2], argv[3], argv[4], int(argv[5]))
    print(first)
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
