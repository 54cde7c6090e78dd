"""Hand-made Ethernet frames for lessons, tests and benchmarks: a TCP SYN, a burst of UDP.

    python -m labkit.capture.frames burst IFACE DST_MAC SRC DST N

sends N prebuilt Ethernet/IPv4/UDP frames (UDP port 40000 -> 9, distinct IP ids) out of
IFACE with a raw packet socket, as fast as Python can; run it inside a lab namespace (it
prints the time of the first and of the last frame sent, epoch seconds, one per line).
"""
from __future__ import annotations

import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ethernet(src_mac: str, dst_mac: str) -> bytes:
    return bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"


def _ipv4(src: str, dst: str, proto: int, payload_len: int, ident: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident & 0xFFFF, 0, 64, proto, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]


def syn_frame(src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int,
              seq: int = 1) -> bytes:
    """An Ethernet frame carrying a TCP SYN from src:sport to dst:dport, checksums and all
    (the IP id is `seq` too, so a capture can tell probes apart)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    return _ethernet(src_mac, dst_mac) + _ipv4(src, dst, 6, len(tcp), seq) + tcp


def udp_frames(src_mac: str, dst_mac: str, src: str, dst: str, n: int) -> list[bytes]:
    """`n` UDP frames 40000 -> 9 (no UDP checksum), frame i carrying i in its IP id and payload."""
    eth = _ethernet(src_mac, dst_mac)
    frames = []
    for i in range(n):
        udp = struct.pack("!HHHH", 40000, 9, 26, 0) + struct.pack("!I", i) + b"x" * 14
        frames.append(eth + _ipv4(src, dst, 17, len(udp), i) + udp)
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
