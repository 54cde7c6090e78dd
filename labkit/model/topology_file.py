"""A topology as a file: TOML (or a dict) whose sections are the `Blueprint` calls.

    name = "two-networks"            # what `labkit status` names it

    [[namespaces]]                   # bp.namespace("host", kind="host")
    name = "host"                    # its role in the lab (Namespace.role)
    kind = "host"                    # host | world | container (the default); older files: role

    [[bridges]]                      # bp.bridge("host", "br0", "172.18.0.1/16")
    namespace = "host"
    name = "br0"
    address = "172.18.0.1/16"        # or a list of CIDRs; optional

    [[veths]]                        # bp.veth("host:veth-web", "web:eth0", master="br0", ...)
    end = "host:veth-web"
    peer = "web:eth0"
    master = "br0"                   # of `end`; peer_master for `peer`
    peer_address = "172.18.0.2/16"   # address for `end`

    [[addresses]]   namespace, interface, address        (one more address, lo's included)
    [[routes]]      namespace, dst ("default" or a network), via | dev
    [[sysctls]]     namespace, key (net.*), value
    [[masquerade]]  source, not_out                      (in the namespace named "host")
    [[publish]]     address, port, to_address, to_port, proto
    [[servers]]     namespace, address, port, kind ("http" | "whoami")
    [[expects]]     src, dst (an address or a namespace), reaches (true | false), port
                    (TCP; without it a ping): what `labkit check --topology FILE` sends

Each entry's keys are the keyword arguments of the call of the same name; sections are replayed
in the order above. Errors name the file, the section and entry, and the fix. `dump` writes a
blueprint back as TOML (`dump(stages.blueprint("outside"))` starts a file from a stage).
"""
from __future__ import annotations

import json
import os

from ..errors import BadValue
from .blueprint import Blueprint

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def load(source) -> Blueprint:
    """A Blueprint from a TOML file's path, or from a dict; BadValue naming what is wrong."""
    if isinstance(source, Blueprint):
        return source
    if isinstance(source, dict):
        return Blueprint.from_dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise BadValue(f"{source!r} is not a topology: give a TOML file's path, a dict or a Blueprint")
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadValue(f"{path}: no such topology file: check the path "
                       f"(examples/two-networks.toml is one to start from)") from None
    except IsADirectoryError:
        raise BadValue(f"{path} is a directory: name a .toml file") from None
    except OSError as e:
        raise BadValue(f"{path}: cannot read it ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadValue(f"{path}: not valid TOML ({e}): fix the line it names") from None
    return Blueprint.from_dict(data, source=path)


def dump(blueprint: Blueprint) -> str:
    """`blueprint` as TOML text that `load` reads back to the same blueprint."""
    data = blueprint.to_dict()
    lines = [f"name = {_value(data.pop('name'))}"]
    for section, entries in data.items():
        for entry in entries:
            lines += ["", f"[[{section}]]"] + [f"{key} = {_value(v)}" for key, v in entry.items()]
    return "\n".join(lines) + "\n"


def write(blueprint: Blueprint, path) -> str:
    """Write `blueprint` as a TOML file at `path`; returns the path."""
    try:
        with open(path, "w") as f:
            f.write(dump(blueprint))
    except OSError as e:
        raise BadValue(f"cannot write {os.fspath(path)} ({e.strerror}): choose another path") from None
    return os.fspath(path)


def _value(v) -> str:
    """A TOML value: a basic string (JSON's escapes are TOML's), a whole number or a list."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))
