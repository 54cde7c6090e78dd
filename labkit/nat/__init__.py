"""NAT for a lab: masquerade, publish, unpublish, over nftables or iptables (see `api`), and the
rule model behind them, shown in both tools' words (see `rules`)."""
from .api import (BACKENDS, AlreadyPublished, apply, counters, drift, live_rules, masquerade,
                  publish, read, remove, rules_in, status_lines, unpublish)
from .rules import commands, explain
from . import filter  # the filter table's rules: registers the Filter entry

__all__ = ["BACKENDS", "filter", "AlreadyPublished", "apply", "commands", "counters", "drift", "explain",
           "live_rules", "masquerade", "publish", "read", "remove", "rules_in", "status_lines", "unpublish"]
