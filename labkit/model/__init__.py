"""The plain-data model: topologies, the naming and address plan, the stages, the builder of a
lab of one's own and its file format (no root, no kernel)."""
from .blueprint import Blueprint
from .topology import Interface, Masquerade, Namespace, PortMapping, Route, Service, Topology

__all__ = ["Blueprint", "Interface", "Masquerade", "Namespace", "PortMapping", "Route", "Service",
           "Topology"]
