"""A TPACKET_V3 receive ring (what libpcap uses): the kernel writes frames straight into
memory shared with labkit, in blocks, and no receive buffer limit (net.core.rmem_max) caps
its size. Where SO_RCVBUFFORCE is refused (a normal user's world: no CAP_NET_ADMIN in the
machine's initial namespace), a capture keeps every frame of a burst this way.

The ring is `blocks` blocks of BLOCK bytes; the kernel fills one block at a time and hands
it to labkit when it is full or RETIRE_MS after its first frame; labkit reads its frames in
order and gives the block back. Frames that find no free block are dropped and counted by
the kernel (PACKET_STATISTICS, struct tpacket_stats_v3).
"""
from __future__ import annotations

import mmap
import socket
import struct
import time

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_STATISTICS = 6
TPACKET_V3 = 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
BLOCK = 1 << 20              # bytes per block: holds the largest frame (64 KiB GSO) many times
FRAME = 1 << 11              # tp_frame_size: only checked by the kernel for V3
RETIRE_MS = 10               # a block with frames goes to labkit at the latest this late
BLOCK_HEADER = struct.Struct("=IIII")   # block_status, num_pkts, offset_to_first_pkt, blk_len (at 8)
FRAME_HEADER = struct.Struct("=IIIIIIHH")  # next_offset, sec, nsec, snaplen, len, status, mac, net
SLL_PKTTYPE = 48 + 10        # sockaddr_ll's sll_pkttype, after the 48-byte tpacket3_hdr


class Ring:
    """The receive ring of packet socket `sock` (set up at once; call before bind)."""

    def __init__(self, sock: socket.socket, size: int):
        self.blocks = max(2, -(-size // BLOCK))
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        req = struct.pack("=7I", BLOCK, self.blocks, FRAME, BLOCK // FRAME * self.blocks,
                          RETIRE_MS, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self.map = mmap.mmap(sock.fileno(), BLOCK * self.blocks, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.map)
        self.block = 0           # the block labkit reads next
        self.left = 0            # frames of it not read yet (0: not started)
        self.offset = 0          # where its next frame starts

    def _status(self, block: int) -> tuple[int, int, int]:
        status, count, first, _ = BLOCK_HEADER.unpack_from(self.view, block * BLOCK + 8)
        return status, count, first

    def next(self, snaplen: int) -> tuple[int, int, bytes, int] | None:
        """The next frame as (time ns, pkttype, bytes kept, length on the wire); None when
        the kernel has handed over no frame not read yet."""
        if self.left == 0:
            status, count, first = self._status(self.block)
            if not status & TP_STATUS_USER:
                return None
            if count == 0:
                self._release()
                return self.next(snaplen)
            self.left, self.offset = count, self.block * BLOCK + first
        at = self.offset
        nxt, sec, nsec, caplen, wirelen, _status, mac, _net = FRAME_HEADER.unpack_from(self.view, at)
        data = bytes(self.view[at + mac:at + mac + min(caplen, snaplen)])
        pkttype = self.view[at + SLL_PKTTYPE]
        self.left -= 1
        if self.left == 0:
            self._release()
        else:
            self.offset = at + nxt
        return sec * 1_000_000_000 + nsec, pkttype, data, wirelen

    def _release(self) -> None:
        """Give the block just read back to the kernel and move to the next (its count is
        zeroed first, so that a block the kernel owns with frames is the one it is filling)."""
        struct.pack_into("=I", self.view, self.block * BLOCK + 12, 0)
        struct.pack_into("=I", self.view, self.block * BLOCK + 8, TP_STATUS_KERNEL)
        self.block = (self.block + 1) % self.blocks
        self.left = 0

    def settle(self, timeout: float = 1.0) -> None:
        """Once the socket is unhooked (no frame comes any more): wait, polling, until the
        kernel has handed over the block it was filling (it does RETIRE_MS after its first
        frame), so that every frame it took can be read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(status == TP_STATUS_KERNEL and count
                       for status, count, _ in map(self._status, range(self.blocks))):
                return
            time.sleep(RETIRE_MS / 4000)

    def close(self) -> None:
        """Unmap the ring (before or after closing its socket)."""
        self.view.release()
        self.map.close()


def statistics(sock: socket.socket) -> tuple[int, int]:
    """The kernel's (packets, drops) of a TPACKET_V3 socket since the last call (struct
    tpacket_stats_v3; packets include the drops); reading resets them."""
    packets, drops, _freezes = struct.unpack("III", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12))
    return packets, drops
