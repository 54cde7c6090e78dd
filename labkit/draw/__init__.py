"""Drawings: the topology diagram, the packet ladder, and their shared matplotlib rendering."""
