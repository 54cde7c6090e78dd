"""`Blueprint`: a lab the stages do not have, written call by call (plain data, no root).

    bp = Blueprint("two-networks")
    bp.namespace("host", kind="host")
    bp.namespace("web")                                   # kind "container"
    bp.bridge("host", "br0", "172.18.0.1/16")
    bp.veth("host:veth-web", "web:eth0", master="br0", peer_address="172.18.0.2/16")
    bp.route("web", "default", via="172.18.0.1")
    bp.sysctl("host", "net.ipv4.ip_forward", 1)
    topology = bp.build("t1")        # checked whole; nothing is made
    Lab("t1").up(bp)                 # made, journaled, undone by `down`
    bp.expect("web", "172.18.0.1")   # what check tests with real traffic (reaches=, port=)
    Lab("t1").check(bp)              # by the kernel's state and by those expectations

Names are roles: in lab "t1" namespace "web" is t1-web in the kernel (15 characters at most,
prefix included). Every namespace has lo, IPv6 off and rp_filter 0 (plan.NAMESPACE_SYSCTLS);
a MAC is derived from the interface's first address, or from its name (plan.mac_for). Each call checks what it can
alone (names, addresses, ports, that the namespaces it names are declared) and raises at once;
`build` checks the whole (validation.check). In the Topology each namespace lists lo, then its
veths, then its bridges, and NAT lists masquerades before publishes, each in call order.

The calls are also the schema of a topology as plain data: `to_dict()` gives one list per
section (namespaces, veths, bridges, addresses, routes, sysctls, masquerade, publish, servers,
expects),
each entry the keyword arguments of one call; `from_dict` replays them in that order.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from . import plan, validation
from ..errors import BadAddress, BadName, BadValue, LabkitError, UnknownName
from .dnsmasq import DNSMASQ
from .expectation import Expectation, make as _expectation
from .topology import Filter, Interface, Masquerade, Namespace, PortMapping, Route, Service, Topology, Vxlan

SECTIONS = (("namespaces", "namespace"), ("veths", "veth"), ("bridges", "bridge"), ("addresses", "address"),
            ("routes", "route"), ("sysctls", "sysctl"), ("masquerade", "masquerade"), ("publish", "publish"),
            ("servers", "server"), ("vxlans", "vxlan"), ("mtus", "mtu"), ("firewall", "firewall"),
            ("dns", "dns"), ("expects", "expect"))
SERVERS = {"http": ("python3", "-m", "http.server", "--bind"),
           "whoami": ("python3", "-m", "labkit.lab.service", "whoami")}


@dataclass
class _Link:
    kind: str
    addresses: list[str] = field(default_factory=list)
    peer: tuple[str, str] | None = None
    master: str | None = None
    mtu: int | None = None
    vxlan: Vxlan | None = None


class Blueprint:
    """A lab written call by call; `build(lab)` checks it whole and returns its Topology.

    Every method returns the blueprint, so calls chain. Declare a namespace before naming it."""

    def __init__(self, name: str = "custom"):
        self.name = validation.check_title(name)
        self.source: str | None = None  # the file it was read from, named in its errors
        self._kinds: dict[str, str] = {}  # namespace -> its kind, in declaration order
        self._links: dict[str, dict[str, _Link]] = {}
        self._routes: dict[str, list[Route]] = {}
        self._sysctls: dict[str, dict[str, str]] = {}
        self._nat: list = []
        self._services: list[Service] = []
        self._expects: list[Expectation] = []
        self._calls: dict[str, list[dict]] = {section: [] for section, _ in SECTIONS}

    def __repr__(self) -> str:
        counts = [f"{len(self._calls[section])} {section if len(self._calls[section]) != 1 else one}"
                  for section, one in SECTIONS[1:] if self._calls[section]]
        return (f"Blueprint {self.name!r}: namespaces {', '.join(self._kinds) or '(none)'}"
                + "".join(f"; {c}" for c in counts))

    # -- the calls ------------------------------------------------------------------------------
    def namespace(self, name: str, kind: str | None = None, *, role: str | None = None) -> Blueprint:
        """Declare namespace `name` of kind "host", "world" or "container" (the default); it gets lo.

        `role` is the older keyword for `kind`, kept so that files and code written with it
        (`role = "host"`, namespace("host", role="host")) still work: give one of the two."""
        validation.check_name(name, "namespace")
        if kind is not None and role is not None and kind != role:
            raise BadValue(f"namespace {name!r}: kind {kind!r} and role {role!r} disagree: role is the "
                           f"older name of kind, give kind alone")
        kind = validation.check_kind(kind if kind is not None else role if role is not None
                                     else "container")
        if name in self._kinds:
            raise BadName(f"namespace {name!r} is declared twice: give each its own name")
        self._kinds[name] = kind
        self._links[name] = {"lo": _Link("loopback")}
        self._routes[name] = []
        self._sysctls[name] = dict(plan.NAMESPACE_SYSCTLS)
        return self._record("namespaces", name=name, kind=kind)

    def bridge(self, namespace: str, name: str, address: str | list[str] | None = None) -> Blueprint:
        """A bridge `name` in `namespace`, with `address` (a CIDR, or a list of them) if given."""
        self._namespace(namespace, f"bridge {name!r}")
        link = _Link("bridge", self._cidrs(address, f"{namespace}:{name}"))
        self._free(namespace, name)
        self._links[namespace][name] = link
        return self._record("bridges", namespace=namespace, name=name, address=address)

    def veth(self, end: str, peer: str, *, address: str | list[str] | None = None,
             master: str | None = None, peer_address: str | list[str] | None = None,
             peer_master: str | None = None) -> Blueprint:
        """A veth pair from `end` to `peer`, each "NAMESPACE:INTERFACE" in two namespaces.

        `address`/`master` belong to `end`, `peer_address`/`peer_master` to `peer`; a master is
        a bridge of that end's namespace (declared before or after)."""
        (a_ns, a_if), (b_ns, b_if) = self._end(end), self._end(peer)
        what = f"veth {a_ns}:{a_if} -- {b_ns}:{b_if}"
        for ns in (a_ns, b_ns):
            self._namespace(ns, what)
        if a_ns == b_ns:
            raise BadValue(f"{what}: both ends are in namespace {a_ns!r}: put the peer in another "
                           f"namespace")
        for bridge in (master, peer_master):
            if bridge is not None:
                validation.check_name(bridge, "bridge")
        a = _Link("veth", self._cidrs(address, f"{a_ns}:{a_if}"), (b_ns, b_if), master)
        b = _Link("veth", self._cidrs(peer_address, f"{b_ns}:{b_if}"), (a_ns, a_if), peer_master)
        self._free(a_ns, a_if)
        self._free(b_ns, b_if)
        self._links[a_ns][a_if], self._links[b_ns][b_if] = a, b
        return self._record("veths", end=f"{a_ns}:{a_if}", peer=f"{b_ns}:{b_if}", address=address,
                            master=master, peer_address=peer_address, peer_master=peer_master)

    def address(self, namespace: str, interface: str, address: str) -> Blueprint:
        """Add `address` (a CIDR) to an interface already declared (lo included)."""
        self._namespace(namespace, f"address {address}")
        link = self._links[namespace].get(interface)
        if link is None:
            raise UnknownName(f"address {address}: {namespace} has no interface {interface!r}: "
                              f"declare it first, or name one of {', '.join(self._links[namespace])}")
        link.addresses.extend(self._cidrs(address, f"{namespace}:{interface}"))
        return self._record("addresses", namespace=namespace, interface=interface, address=address)

    def route(self, namespace: str, dst: str, *, via: str | None = None,
              dev: str | None = None) -> Blueprint:
        """A static route in `namespace` to `dst` ("default" or a network) via a gateway
        address or out of interface `dev` (one of the two)."""
        self._namespace(namespace, f"route {dst}")
        target = validation.check_network(dst, "route destination")
        if (via is None) == (dev is None):
            raise BadValue(f"{namespace}: route {dst}: give either via (a gateway address) or dev "
                           f"(an interface), one of them")
        gateway = str(plan.parse_any_address(via)) if via is not None else None
        if dev is not None:
            validation.check_name(dev)
        self._routes[namespace].append(Route(target, gateway, dev))
        return self._record("routes", namespace=namespace, dst=dst, via=via, dev=dev)

    def sysctl(self, namespace: str, key: str, value: str | int) -> Blueprint:
        """Set net.* sysctl `key` to `value` in `namespace` (e.g. net.ipv4.ip_forward = 1)."""
        self._namespace(namespace, f"sysctl {key}")
        key, text = validation.check_sysctl(key, value)
        self._sysctls[namespace][key] = text
        return self._record("sysctls", namespace=namespace, key=key, value=value)

    def masquerade(self, source: str, *, not_out: str | None = None,
                   namespace: str = "host") -> Blueprint:
        """Masquerade packets from network `source` unless they leave by `not_out`.

        labkit puts NAT in the namespace named "host" only, for now (`build` refuses others)."""
        network = validation.check_network(source, "masquerade source")
        if network == "default":
            raise BadAddress(f"masquerade source {source}: name a network such as {plan.BRIDGE_NET}")
        if not_out is not None:
            validation.check_name(not_out)
        self._nat.append(Masquerade(network, not_out, validation.check_name(namespace, "namespace")))
        return self._record("masquerade", source=source, not_out=not_out,
                            namespace=None if namespace == "host" else namespace)

    def publish(self, address: str, port: int, to_address: str, to_port: int | None = None, *,
                proto: str = "tcp", namespace: str = "host") -> Blueprint:
        """Publish `to_address`:`to_port` (default `port`) on the host's `address`:`port` (DNAT).

        `address` is an address of the namespace named "host", or 127.0.0.1."""
        validation.check_port(port)
        validation.check_port(port if to_port is None else to_port, "target port")
        if proto not in validation.PROTOCOLS:
            raise BadValue(f"publish protocol {proto!r}: use tcp or udp")
        entry = PortMapping(str(plan.parse_address(address)), port, str(plan.parse_address(to_address)),
                            port if to_port is None else to_port, proto,
                            validation.check_name(namespace, "namespace"))
        self._nat.append(entry)
        return self._record("publish", address=address, port=port, to_address=to_address,
                            to_port=to_port, proto=None if proto == "tcp" else proto,
                            namespace=None if namespace == "host" else namespace)

    def server(self, namespace: str, address: str, port: int, *, kind: str = "http") -> Blueprint:
        """An HTTP server in `namespace` on `address`:`port`, started by `up`, ended by `down`.

        kind "http": `python3 -m http.server` (a page naming the namespace); "whoami": a page
        that is the client's address as the server saw it."""
        self._namespace(namespace, f"server {address}:{port}")
        validation.check_port(port)
        if kind not in SERVERS:
            raise BadValue(f"server kind {kind!r} is not known: use {' or '.join(SERVERS)}")
        address = str(plan.parse_any_address(address))
        self._services.append(Service(namespace, SERVERS[kind] + (address, str(port)), address, port))
        return self._record("servers", namespace=namespace, address=address, port=port,
                            kind=None if kind == "http" else kind)

    def expect(self, src: str, dst: str, reaches: bool = True, port: int | None = None) -> Blueprint:
        """What `check` tests with real traffic: from namespace `src`, `dst` (an address, or a
        namespace: any of its addresses) answers a ping, or with `port` accepts a TCP
        connection; with reaches=False, it does not (labkit.model.expectation)."""
        self._expects.append(_expectation(src, dst, reaches, port, list(self._kinds)))
        return self._record("expects", src=src, dst=dst, reaches=reaches, port=port)

    @property
    def expectations(self) -> tuple[Expectation, ...]:
        """The expectations declared with `expect`, in call order."""
        return tuple(self._expects)

    def vxlan(self, namespace: str, name: str, vni: int, *, local: str, remotes: list[str] | str = (),
              port: int = 4789, master: str | None = None) -> Blueprint:
        """A VXLAN device `name` in `namespace` (`ip link add NAME type vxlan id VNI dstport
        PORT local LOCAL nolearning`), a port of bridge `master` if given, flooding to each of
        `remotes` (`bridge fdb append 00:00:00:00:00:00 dev NAME dst REMOTE`). `local` is an
        underlay address the namespace holds (checked by `build`)."""
        self._namespace(namespace, f"vxlan {name!r}")
        remotes = [remotes] if isinstance(remotes, str) else list(remotes)
        local = str(plan.parse_address(local))
        tunnel = Vxlan(vni, validation.check_port(port, "VXLAN UDP port"), local,
                       tuple(str(plan.parse_address(r)) for r in remotes))
        if master is not None:
            validation.check_name(master, "bridge")
        self._free(namespace, name)
        self._links[namespace][name] = _Link("vxlan", master=master, vxlan=tunnel)
        return self._record("vxlans", namespace=namespace, name=name, vni=vni, local=local,
                            remotes=list(tunnel.remotes) or None,
                            port=None if port == 4789 else port, master=master)

    def mtu(self, namespace: str, interface: str, mtu: int) -> Blueprint:
        """Set the MTU of an interface already declared (`ip link set IFACE mtu MTU`)."""
        self._namespace(namespace, f"mtu {mtu}")
        link = self._links[namespace].get(interface)
        if link is None:
            raise UnknownName(f"mtu {mtu}: {namespace} has no interface {interface!r}: declare it "
                              f"first, or name one of {', '.join(self._links[namespace])}")
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise BadValue(f"{namespace}:{interface}: mtu {mtu!r} is out of range: use a whole "
                           f"number from 68 to 65535")
        link.mtu = mtu
        return self._record("mtus", namespace=namespace, interface=interface, mtu=mtu)

    def firewall(self, networks, *, icc: bool = True) -> Blueprint:
        """Docker's filter table in the namespace named "host" (labkit.nat.filter): FORWARD
        policy DROP, the user's chain first, replies by conntrack state, the published ports
        open, and `networks` ([bridge, CIDR] pairs) kept apart; `icc` False drops traffic
        between the containers of one bridge."""
        pairs = tuple((str(b), validation.check_network(n, "firewall network")) for b, n in networks)
        for bridge, _ in pairs:
            validation.check_name(bridge, "bridge")
        if not isinstance(icc, bool):
            raise BadValue(f"firewall icc {icc!r}: give true or false")
        if any(isinstance(e, Filter) for e in self._nat):
            raise BadValue("a lab has one firewall: give all its networks in one call")
        self._nat.append(Filter(pairs, icc))
        return self._record("firewall", networks=[list(p) for p in pairs],
                            icc=None if icc else False)

    def dns(self, namespace: str, address: str, port: int, *, records=(),
            upstream: str | None = None) -> Blueprint:
        """A DNS server (Debian's dnsmasq) in `namespace` on `address`:`port`, started by `up`,
        ended by `down`: it answers `records` ([name, address] pairs) and forwards every
        other name to `upstream` (an address; none: it answers only its records)."""
        self._namespace(namespace, f"dns {address}:{port}")
        validation.check_port(port)
        address = str(plan.parse_address(address))
        pairs = [(str(name), str(plan.parse_address(addr))) for name, addr in records]
        argv = DNSMASQ + (f"--listen-address={address}", f"--port={port}")
        if upstream is not None:
            argv += (f"--server={plan.parse_address(upstream)}",)
        argv += tuple(f"--host-record={name},{addr}" for name, addr in pairs)
        self._services.append(Service(namespace, argv, address, port))
        return self._record("dns", namespace=namespace, address=address, port=port,
                            records=[list(p) for p in pairs] or None, upstream=upstream)

    # -- the whole -----------------------------------------------------------------------------
    def build(self, lab: str = "") -> Topology:
        """The Topology of this blueprint for lab `lab`, checked whole (nothing is made)."""
        try:
            namespaces = tuple(self._build_namespace(ns) for ns in self._kinds)
            nat = tuple(e for e in self._nat if isinstance(e, Masquerade)) + \
                tuple(e for e in self._nat if not isinstance(e, Masquerade))
            return validation.check(Topology(lab, self.name, namespaces, nat, tuple(self._services)))
        except LabkitError as e:
            raise located(e, self.source) from None

    def to_dict(self) -> dict:
        """The blueprint as plain data: its name, and each section's calls (keyword arguments)."""
        data: dict = {"name": self.name}
        data.update({section: [dict(c) for c in calls] for section, calls in self._calls.items() if calls})
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> Blueprint:
        """Replay `data` (as `to_dict` gives it); errors name `source`, the entry and the fix."""
        where = source or "topology"
        if not isinstance(data, dict):
            raise BadValue(f"{where}: a topology is a table of sections, not {type(data).__name__}")
        known = ["name"] + [section for section, _ in SECTIONS]
        unknown = [key for key in data if key not in known]
        if unknown:
            raise BadValue(f"{where}: unknown section {', '.join(map(repr, unknown))}: the sections "
                           f"are {', '.join(known)}")
        try:
            blueprint = cls(data.get("name", "custom"))
        except LabkitError as e:
            raise located(e, where) from None
        blueprint.source = source
        for section, method in SECTIONS:
            entries = data.get(section, [])
            if not isinstance(entries, list):
                raise BadValue(f"{where}: {section} must be a list of entries ([[{section}]] in TOML)")
            for i, entry in enumerate(entries, 1):
                label = f"{where}: {section} entry {i}"
                if not isinstance(entry, dict):
                    raise BadValue(f"{label} is not a table of keys ({entry!r})")
                _check_keys(getattr(cls, method), entry, label)
                try:
                    getattr(blueprint, method)(**entry)
                except LabkitError as e:
                    raise located(e, label) from None
        return blueprint

    # -- helpers -------------------------------------------------------------------------------
    def _record(self, section: str, **kwargs) -> Blueprint:
        self._calls[section].append({k: list(v) if isinstance(v, (tuple, list)) else v
                                     for k, v in kwargs.items() if v is not None})
        return self

    def _namespace(self, name: str, what: str) -> None:
        if name not in self._kinds:
            declared = ", ".join(self._kinds) or "none yet"
            raise UnknownName(f"{what}: namespace {name!r} is not declared (declared: {declared}): "
                              f"declare it first, namespace({name!r}, kind=...)")

    def _free(self, namespace: str, name: str) -> None:
        """BadName unless `name` can name a new interface of `namespace`."""
        validation.check_name(name)
        have = self._links[namespace].get(name)
        if have is not None:
            raise BadName(f"{namespace} has an interface {name!r} already (a {have.kind}): "
                          f"choose another name")

    @staticmethod
    def _end(end) -> tuple[str, str]:
        parts = end.split(":") if isinstance(end, str) else list(end) if isinstance(end, (tuple, list)) else []
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise BadValue(f"veth end {end!r}: write it as 'NAMESPACE:INTERFACE', e.g. 'host:veth0'")
        return parts[0], parts[1]

    @staticmethod
    def _cidrs(value, where: str) -> list[str]:
        items = [] if value is None else [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise BadValue(f"{where}: address {value!r}: give a CIDR such as 172.18.0.2/16, or a list")
        return [validation.check_address(cidr, where) for cidr in items]

    def _build_namespace(self, name: str) -> Namespace:
        links = self._links[name]
        order = ["lo"] + [n for n, link in links.items() if link.kind == "veth"] \
            + [n for n, link in links.items() if link.kind == "bridge"] \
            + [n for n, link in links.items() if link.kind == "vxlan"]
        interfaces = []
        for n in order:
            link = links[n]
            mac = None if link.kind == "loopback" else \
                plan.mac_for(link.addresses[0] if link.addresses else None, name, n)
            interfaces.append(Interface(n, link.kind, tuple(link.addresses), mac, link.peer, link.master,
                                        mtu=link.mtu, vxlan=link.vxlan))
        return Namespace(name, self._kinds[name], tuple(interfaces), tuple(self._routes[name]),
                         tuple(self._sysctls[name].items()))


def located(error: LabkitError, where: str | None) -> LabkitError:
    """`error` with "WHERE: " in front of its message (the same class); as it is if no `where`."""
    return type(error)(f"{where}: {error}") if where else error


def _check_keys(method, entry: dict, label: str) -> None:
    """BadValue naming unknown or missing keys of an entry for `method`."""
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    names = [p.name for p in params]
    unknown = [k for k in entry if k not in names]
    if unknown:
        raise BadValue(f"{label}: unknown key {', '.join(map(repr, unknown))}: its keys are "
                       f"{', '.join(names)}")
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in entry]
    if missing:
        raise BadValue(f"{label}: missing key {', '.join(map(repr, missing))} (its keys are "
                       f"{', '.join(names)})")
