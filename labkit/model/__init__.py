"""The plain-data model: topologies, the naming and address plan, the stages (no root, no kernel)."""
from .topology import Interface, Masquerade, Namespace, PortMapping, Route, Service, Topology

__all__ = ["Interface", "Masquerade", "Namespace", "PortMapping", "Route", "Service", "Topology"]
