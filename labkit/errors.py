"""Errors that labkit raises: each says what was wrong and what to do about it."""


class LabkitError(Exception):
    """Base of every error labkit raises on purpose; the message names the problem and the fix."""


class BadName(LabkitError, ValueError):
    """A namespace, interface or lab name the kernel or labkit would refuse."""


class BadAddress(LabkitError, ValueError):
    """A CIDR or address that does not parse, or clashes with one already in the lab."""


class BadValue(LabkitError, ValueError):
    """An argument out of its range (container count, port, ...)."""


class UnknownName(LabkitError, LookupError):
    """A stage, namespace, container or interface that the lab does not have."""


class NotPrivileged(LabkitError, PermissionError):
    """The process lacks root / CAP_NET_ADMIN."""


class MissingTool(LabkitError):
    """A system tool (nft, iptables, tshark, ...) is not installed."""


class KernelError(LabkitError, OSError):
    """The kernel refused an operation; the message says which and why."""
