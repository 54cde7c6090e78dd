"""The journal: what a lab created, written down before it is created.

One JSON file per lab in `run_dir()` (LABKIT_RUN_DIR, default /run/labkit). `labkit down`
undoes one lab from it and `labkit clean` every lab, after a crash too: a kill -9 between
writing an entry and creating the resource leaves an entry whose undo is "already gone".
Nothing is ever cleaned up by name pattern, only what a journal names.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil

from ..kernel import netns, places
from ..errors import NotPrivileged


def run_dir() -> str:
    """Directory of the journals (LABKIT_RUN_DIR, default /run/labkit)."""
    return places.current().run_dir


def _file_name(lab: str) -> str:
    return f"{lab or 'default'}.json"


class Journal:
    """The journal of one lab: namespaces and files it created, and free-form records."""

    def __init__(self, lab: str):
        self.lab = lab
        self.path = os.path.join(run_dir(), _file_name(lab))
        self.data = self._load()

    def _load(self) -> dict:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            data = {}
        except PermissionError:
            from ..kernel import privilege
            privilege.require()  # the usual cause: not root; says how to run labkit
            raise NotPrivileged(f"cannot read the lab journal {self.path}: permission denied; "
                                f"run labkit as the user that made the lab (root: sudo labkit ...)"
                                ) from None
        data.setdefault("lab", self.lab)
        data.setdefault("namespaces", [])
        data.setdefault("paths", [])
        data.setdefault("inodes", {})
        data.setdefault("records", {})
        return data

    def exists(self) -> bool:
        """True if the journal file is on disk."""
        return os.path.exists(self.path)

    def _save(self) -> None:
        os.makedirs(run_dir(), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @property
    def namespaces(self) -> list[str]:
        """Kernel names of the namespaces the lab created (or was about to)."""
        return list(self.data["namespaces"])

    def add_namespaces(self, names: list[str]) -> None:
        """Record namespaces about to be created (call BEFORE creating them)."""
        new = [n for n in names if n not in self.data["namespaces"]]
        if new or not self.exists():
            self.data["namespaces"].extend(new)
            self._save()

    def forget_namespaces(self, names: list[str]) -> None:
        """Drop namespaces that were deleted."""
        self.data["namespaces"] = [n for n in self.data["namespaces"] if n not in names]
        for name in names:
            self.data["inodes"].pop(name, None)
        self._save()

    def add_inodes(self, names: list[str]) -> None:
        """Record the identity (inode) of namespaces just created, so `undo` never deletes a
        namespace of the same name that someone else made after ours was deleted by hand."""
        found = {n: ino for n in names if (ino := netns.inode(n)) is not None}
        if found:
            self.data["inodes"].update(found)
            self._save()

    def expect_namespaces(self, names: list[str]) -> None:
        """Record namespaces a person is about to create by hand (practice): `undo` deletes
        them by name, whoever made them (their identity cannot be known in advance)."""
        new = [n for n in names if n not in self.data["namespaces"]]
        self.data["namespaces"].extend(new)
        for name in names:
            self.data["inodes"].pop(name, None)
        self._save()

    def foreign(self) -> list[str]:
        """Journaled namespaces that exist now but are not the ones the lab created."""
        return [n for n, ino in self.data["inodes"].items()
                if (now := netns.inode(n)) is not None and now != ino]

    def add_path(self, path: str) -> None:
        """Record a file or directory about to be created (removed on undo)."""
        self.add_paths([path])

    def add_paths(self, paths: list[str]) -> None:
        """Record files or directories about to be created, in one write of the journal."""
        known = set(self.data["paths"])
        new = [p for p in dict.fromkeys(paths) if p not in known]
        if new:
            self.data["paths"].extend(new)
            self._save()

    def record(self, key: str, value) -> None:
        """Store a free-form record (e.g. the NAT backend in use, a sysctl's old value)."""
        self.update({key: value})

    def update(self, records: dict) -> None:
        """Store several free-form records in one write of the journal."""
        self.data["records"].update(records)
        self._save()

    def get(self, key: str, default=None):
        """A free-form record, or `default`."""
        return self.data["records"].get(key, default)

    def undo(self) -> list[str]:
        """Delete every namespace and path recorded, in reverse, then the journal; returns what
        went. A namespace whose name was re-used by someone else (another inode) is left alone.
        Goes on past what cannot be removed: that stays journaled, with why, in `self.left`
        (name -> why), and the journal stays for a later `undo`."""
        foreign = set(self.foreign())
        self.left: dict[str, str] = {}
        gone = netns.delete_many([n for n in reversed(self.data["namespaces"]) if n not in foreign],
                                 problems=self.left)
        for path in reversed(self.data["paths"]):
            if not os.path.lexists(path):
                continue
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                self.left[path] = f"cannot remove it: {e.strerror} (errno {e.errno})"
                continue
            gone.append(path)
        if self.left:
            self.data["namespaces"] = [n for n in self.data["namespaces"] if n in self.left]
            self.data["paths"] = [p for p in self.data["paths"] if p in self.left]
            self.data["inodes"] = {n: i for n, i in self.data["inodes"].items() if n in self.left}
            self._save()
            return gone
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path + ".tmp")
        with contextlib.suppress(OSError):
            os.rmdir(run_dir())  # only when no other lab has a journal there
        return gone

    def left_text(self) -> str:
        """What the last `undo` could not remove and why, as one line ("" if it removed all)."""
        flag = f" --lab {self.lab}" if self.lab else ""
        return "" if not getattr(self, "left", None) else (
            f"lab {self.lab or '(default)'!r}: could not remove "
            + "; ".join(f"{what}: {why}" for what, why in self.left.items())
            + f"; the journal keeps them, so `labkit down{flag}` tries again")


def labs() -> list[str]:
    """Names of every lab that has a journal ("" is the default lab)."""
    try:
        entries = sorted(os.listdir(run_dir()))
    except FileNotFoundError:
        return []
    except PermissionError:
        from ..kernel import privilege
        privilege.require()
        raise NotPrivileged(f"cannot list the lab journals in {run_dir()}: permission denied; "
                            f"run labkit as the user that made the labs (root: sudo labkit ...)"
                            ) from None
    found = []
    for entry in entries:
        if entry.endswith(".json"):
            stem = entry[:-5]
            found.append("" if stem == "default" else stem)
    return found


def sweep() -> None:
    """Remove journal files half-written by a killed process, and the directory if empty."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(run_dir()):
            if entry.endswith(".json.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(run_dir(), entry))
    with contextlib.suppress(OSError):
        os.rmdir(run_dir())
