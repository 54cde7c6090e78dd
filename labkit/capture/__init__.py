"""Packet captures: sockets in lab namespaces, packets and their paths across points, pcap files."""
from .live import Capture, Point, capture, parse_point, stop_all
from .packets import Packet, Packets, PointStats
from .pcap import compile_filter

__all__ = ["Capture", "Point", "capture", "parse_point", "stop_all", "Packet", "Packets",
           "PointStats", "compile_filter"]
