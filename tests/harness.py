"""What several test files need alike: where the repository is, and labkit run from a process
without any capability (root in a container without CAP_NET_ADMIN, a hosted notebook service)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import labkit
from labkit.pytest_plugin import WITHOUT_CAPABILITIES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(labkit.__file__)))


def labkit_env(**extra: str) -> dict[str, str]:
    """This process's environment with this checkout's labkit importable first, plus `extra`."""
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def without_capabilities(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Run this Python with `args` (e.g. "-c", CODE) as root without any capability, labkit
    importable, the environment's variables plus `env`; returns the finished process (text)."""
    return subprocess.run([*WITHOUT_CAPABILITIES, sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, env=labkit_env(**env))


def kernel_without_capabilities(jupyter_path) -> str:
    """Write the Jupyter kernel "nocaps" (this Python without any capability) under
    `jupyter_path`/kernels; returns the directory to give as JUPYTER_PATH."""
    spec = os.path.join(str(jupyter_path), "kernels", "nocaps")
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w") as f:
        json.dump({"argv": [*WITHOUT_CAPABILITIES, sys.executable, "-m", "ipykernel_launcher",
                            "-f", "{connection_file}"],
                   "display_name": "no capabilities", "language": "python"}, f)
    return str(jupyter_path)


def path_without(tmp_path, monkeypatch, *tools: str) -> None:
    """Set PATH to a directory of links to every command of the old PATH except `tools`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if os.path.isdir(d):
            for name in os.listdir(d):
                if name not in tools and not (bindir / name).exists():
                    (bindir / name).symlink_to(os.path.join(d, name))
    monkeypatch.setenv("PATH", str(bindir))


@contextlib.contextmanager
def new_users(count: int, prefix: str = "lk"):
    """`count` new Unix users with homes and passwords (unique names): yields {name: password};
    after, however the block ends, every process of theirs is killed and they are removed with
    their homes (userdel -r)."""
    import secrets
    from test_rootless import User
    tag = secrets.token_hex(3)
    names = [f"{prefix}{tag}{i:02d}" for i in range(count)]
    made = []
    try:
        for name in names:
            _useradd(name)
            made.append(name)
        passwords = {name: secrets.token_urlsafe(12) for name in names}
        subprocess.run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in passwords.items()),
                       text=True, check=True, capture_output=True)
        yield passwords
    finally:
        for name in made:
            User(name, sys.executable, {}).end_everything()
            result = subprocess.run(["userdel", "-r", name], capture_output=True, text=True)
            assert result.returncode == 0, f"userdel -r {name}: {result.stderr}"
            for scratch in (f"/tmp/labkit-pycache-{name}", f"/tmp/labkit-mpl-{name}"):
                subprocess.run(["rm", "-rf", scratch])


def _useradd(name: str, timeout: float = 60.0) -> None:
    """useradd -m `name`, tried again while another useradd or userdel holds the lock on the
    user database (/etc/.pwd.lock: another test's, or the benchmarks')."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "lock" not in result.stderr or time.monotonic() > deadline:
            raise AssertionError(f"useradd {name}: {result.stderr.strip()}")
        time.sleep(0.2)
