"""Packet captures: sockets in lab namespaces, packets and their paths across points, pcap files.

Importing this loads no scapy: frames, files and filters import it when they are made.
"""
from .live import Capture, capture, stop_all
from .packets import Packet, Packets, PointStats
from .pcap import compile_filter
from .points import Point, parse_point

__all__ = ["Capture", "Point", "capture", "parse_point", "stop_all", "Packet", "Packets",
           "PointStats", "compile_filter"]
