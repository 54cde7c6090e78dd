"""The kernel: network namespaces, rtnetlink (through pyroute2), sysctls, privileges.

Nothing here knows about labs: every call names a kernel namespace."""
