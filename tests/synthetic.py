"""Synthetic captured packets for the unit tests of captures and ladders (no kernel needed)."""
from labkit.capture import Packet

T0 = 1_700_000_000_000_000_000  # a capture's first timestamp, in ns


def frame(*layers) -> bytes:
    """The bytes of scapy layers stacked in order (Ether(), IP(...), ICMP())."""
    pkt = layers[0]
    for layer in layers[1:]:
        pkt = pkt / layer
    return bytes(pkt)


def seen(at_us, point, direction, data, upper=False) -> Packet:
    """A Packet captured `at_us` microseconds after T0 at `point`, going `direction`."""
    return Packet(T0 + int(at_us * 1000), point, direction,
                  "outgoing" if direction == "out" else "host", data, len(data), upper)
