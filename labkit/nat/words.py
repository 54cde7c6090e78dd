"""nftables' words for labkit's rules: the lab's own table, its chains (per iptables table and
chain: nft name, type, hook, priority, priority's name), verdicts and conntrack states; and
which chains a list of rules needs. Plain data, no kernel; knows rules only by their fields."""
from __future__ import annotations

# nftables' words: the lab's own table, and per (iptables table, chain) the nft chain
# (name, type, hook, priority, priority's name)
NFT_FAMILY = "ip"
NFT_TABLE = "labkit"
NFT_CHAINS = {
    ("raw", "PREROUTING"): ("raw_prerouting", "filter", "prerouting", -300, "raw"),
    ("nat", "PREROUTING"): ("prerouting", "nat", "prerouting", -100, "dstnat"),
    ("nat", "OUTPUT"): ("output", "nat", "output", -100, "-100"),
    ("nat", "POSTROUTING"): ("postrouting", "nat", "postrouting", 100, "srcnat"),
    # the filter table (labkit.nat.filter): a base chain, and regular chains (no hook)
    ("filter", "FORWARD"): ("forward", "filter", "forward", 0, "filter"),
    ("filter", "DOCKER-USER"): ("docker-user", None, None, None, None),
    ("filter", "DOCKER"): ("docker", None, None, None, None),
    ("filter", "DOCKER-ISOLATION-STAGE-1"): ("docker-isolation-stage-1", None, None, None, None),
    ("filter", "DOCKER-ISOLATION-STAGE-2"): ("docker-isolation-stage-2", None, None, None, None),
}
BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
VERDICTS = {"MASQUERADE": "masquerade", "DROP": "drop", "ACCEPT": "accept", "RETURN": "return"}


def nft_states(ctstate: str) -> str:
    """iptables' conntrack states ("RELATED,ESTABLISHED") in nft's words ("established,related")."""
    return ",".join(sorted(s.lower() for s in ctstate.split(",")))


def ct_states(words) -> str:
    """nft's states (a list, or one) in iptables' words, in the order iptables-save prints them."""
    order = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED")
    found = {w.upper() for w in ([words] if isinstance(words, str) else words)}
    return ",".join(s for s in order if s in found)


def nft_chain(table: str, chain: str) -> str:
    """The nft name of iptables' chain `chain` of `table` (a chain labkit does not know: lower case)."""
    spec = NFT_CHAINS.get((table, chain))
    return spec[0] if spec else chain.lower()


def chain_command(table: str, chain: str, policy: str | None = None) -> str:
    """`add chain ip labkit NAME ...`: a base chain with its type, hook, priority (and policy),
    or a regular chain, as nft's arguments (quoted for a shell)."""
    name, kind, hook, _, prio_name = NFT_CHAINS[(table, chain)]
    if hook is None:
        return f"add chain {NFT_FAMILY} {NFT_TABLE} {name}"
    extra = f" policy {policy.lower()};" if policy else ""
    return (f"add chain {NFT_FAMILY} {NFT_TABLE} {name} "
            f"'{{ type {kind} hook {hook} priority {prio_name};{extra} }}'")


def chains_of(rules) -> list[tuple[str, str]]:
    """(table, chain) of every chain `rules` use, in order of first use: those that hold
    rules, and those jumped to."""
    found = []
    for r in rules:
        for key in ((r.table, r.chain),) + (((r.table, r.action),) if jumps(r) else ()):
            if key not in found:
                found.append(key)
    return found


def jumps(rule) -> bool:
    """True if `rule` jumps to a chain (its action is no verdict of its own)."""
    return not rule.policy and rule.action not in VERDICTS and rule.action not in ("DNAT", "SNAT", "REJECT")
