"""NAT for a lab: masquerade, publish, unpublish, over nftables or iptables (see `api`)."""
from .api import (BACKENDS, AlreadyPublished, apply, commands, drift, explain, live_rules,
                  masquerade, publish, read, remove, status_lines, unpublish)

__all__ = ["BACKENDS", "AlreadyPublished", "apply", "commands", "drift", "explain", "live_rules",
           "masquerade", "publish", "read", "remove", "status_lines", "unpublish"]
