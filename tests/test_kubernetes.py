"""The Kubernetes deployment's security pieces (deploy/kubernetes), proven here without a
cluster: the Localhost seccomp profile, loaded with libseccomp into a normal user's labkit
as a container runtime loads it, lets `labkit up publish`, `labkit check` and a capture work;
under the runtime's default profile it was made from (Docker's, containerd's), labkit and
`labkit doctor` say why they cannot and the fix; and the pod manifest KubeSpawner builds
from the Helm values carries the profile, hostUsers false, no privilege and no added
capability."""
from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from harness import REPO, new_users
from seedtyping import poll
from test_rootless import User, _python_for

DEPLOY = os.path.join(REPO, "deploy", "kubernetes")
PROFILE = os.path.join(DEPLOY, "seccomp", "labkit.json")
LOADER = os.path.join(REPO, "tests", "seccomp_profile.py")

CAPTURE = r"""
from labkit.kernel import world
world.enter()
from labkit.lab import Lab
from labkit.capture import Capture
lab = Lab()
with Capture(["host:br0", "netns0:ceth0"], lab=lab, filter="tcp port 5000") as cap:
    page = lab.exec("world", ["curl", "-s", "-m", "5", "http://10.0.2.15:5000/"]).stdout
    cap.wait(until=lambda p: len(p) >= 20, timeout=10)
print("page", "netns0" in page)
for s in cap.stats:
    print("point", s.point, s.captured, s.dropped)
"""


@pytest.fixture
def student():
    """A new normal user (as a pod's user is), removed after with every process."""
    with new_users(1, "lks") as passwords:
        name = next(iter(passwords))
        python, env = _python_for(name)
        yield User(name, python, env)


def _under(user: User, *argv: str, labkit: bool = True, timeout: float = 120):
    """Run `argv` as `user` under the profile (`labkit` False: without labkit's rules, i.e.
    the runtime's default profile)."""
    return user.run(user.python, LOADER, PROFILE, *([] if labkit else ["--without-labkit"]), "--",
                    *argv, timeout=timeout)


def _seccomp(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Seccomp:"))


@pytest.mark.users
def test_under_labkits_profile_a_user_brings_up_publish_checks_it_and_captures(student):
    said = _under(student, student.python, "-m", "labkit", "up", "publish")
    assert said.returncode == 0, said.stdout + said.stderr
    w = student.world()
    assert w is not None and _seccomp(w.pid) == "2", "the world's keeper runs under the filter"
    said = _under(student, student.python, "-m", "labkit", "check", "publish")
    assert said.returncode == 0 and "stage publish: done" in said.stdout, said.stdout + said.stderr
    said = _under(student, student.python, "-c", CAPTURE)
    assert said.returncode == 0, said.stdout + said.stderr
    lines = said.stdout.splitlines()
    assert lines[0] == "page True", lines
    counts = {p: (int(n), int(d)) for _, p, n, d in (line.split() for line in lines[1:])}
    assert all(n >= 10 and d == 0 for n, d in counts.values()) and len(counts) == 2, counts
    said = _under(student, student.python, "-m", "labkit", "down")
    assert said.returncode == 0, said.stderr
    assert student.world() is None and poll(lambda: not w.alive(), 5)


@pytest.mark.users
def test_under_the_runtimes_default_profile_labkit_and_doctor_say_why_and_the_fix(student):
    said = _under(student, student.python, "-m", "labkit", "up", "veth", labkit=False)
    assert said.returncode != 0 and "Traceback" not in said.stderr, said.stderr
    assert "a seccomp filter refuses unshare(CLONE_NEWUSER)" in said.stderr, said.stderr
    assert "deploy/kubernetes/seccomp/labkit.json" in said.stderr, said.stderr
    said = _under(student, student.python, "-m", "labkit", "doctor", labkit=False)
    line = next(line for line in said.stdout.splitlines() if "user namespaces" in line)
    assert line.startswith("FAIL") and "seccomp filter refuses unshare" in line, said.stdout
    assert student.world() is None


def test_the_profile_is_the_runtimes_default_plus_labkits_rules_only():
    """Each rule labkit added is marked, allows only what it says (no cgroup, UTS, IPC, PID
    or time namespace), and none of the default's rules is changed (read back from the
    default's own marks: its CAP_SYS_ADMIN group still names unshare)."""
    sys.path.insert(0, os.path.dirname(LOADER))
    import seccomp_profile
    with open(PROFILE) as f:
        profile = json.load(f)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    ours = [r for r in profile["syscalls"] if r not in seccomp_profile.rules(profile, labkit=False)]
    assert sorted(n for r in ours for n in r["names"]) == ["clone", "mount", "setns", "umount2", "unshare"]
    others = 0x02000000 | 0x04000000 | 0x08000000 | 0x20000000   # cgroup, UTS, IPC, PID
    flags = {r["names"][0]: r["args"][0] for r in ours if r.get("args")}
    assert flags["unshare"] == {"index": 0, "value": others | 0x80, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    assert flags["clone"] == {"index": 0, "value": others, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    admin = next(r for r in profile["syscalls"] if (r.get("includes") or {}).get("caps") == ["CAP_SYS_ADMIN"])
    assert "unshare" in admin["names"] and "setns" in admin["names"]


# -- the pod KubeSpawner makes from the values ----------------------------------------------

def _values() -> dict:
    import yaml
    with open(os.path.join(DEPLOY, "values.yaml")) as f:
        return yaml.safe_load(f)


def _kubespawner_config(values: dict):
    """The KubeSpawner configuration the chart's hub makes of `values` (z2jh's
    jupyterhub/files/hub/jupyterhub_config.py, for the keys these values use; any other key
    under singleuser fails the test, so none is silently left out)."""
    from traitlets.config import Config
    c = Config()
    single = dict(values["singleuser"])
    mapped = {"image": None, "uid": "uid", "fsGid": "fs_gid", "cmd": "cmd",
              "allowPrivilegeEscalation": "allow_privilege_escalation",
              "extraPodConfig": "extra_pod_config", "extraEnv": "environment",
              "networkPolicy": None, "memory": None, "cpu": None}
    assert set(single) <= set(mapped), set(single) - set(mapped)
    c.KubeSpawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    for key, trait in mapped.items():
        if trait and key in single:
            setattr(c.KubeSpawner, trait, single[key])
    for section, cfg in values["hub"].get("config", {}).items():   # hub.config: passed through
        c[section].update(cfg)
    return c


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def test_the_pod_kubespawner_builds_from_the_values_runs_the_profile_without_privilege(tmp_path, monkeypatch):
    """Offline: KubeSpawner's client is given a cluster it never calls (the manifest is only
    built), as the hub's would be."""
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))   # read when first imported
    pytest.importorskip("kubespawner", reason="pip install jupyterhub-kubespawner (./install.sh --classroom)")
    from kubernetes_asyncio.config import kube_config
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    from jupyterhub.objects import Hub
    from kubespawner import KubeSpawner

    class Student:      # what KubeSpawner reads of the hub's user
        name, id, escaped_name, url = "ada", 1, "ada", "/user/ada/"
        admin, groups = False, []
        server, spawner, orm_user = None, None, None
        settings = {}

    async def manifest():      # KubeSpawner makes its client in the running loop
        spawner = KubeSpawner(config=_kubespawner_config(_values()), user=Student(), hub=Hub(), _mock=True)
        return (await spawner.get_pod_manifest()).to_dict(), spawner.server_token_scopes
    pod, spawner_scopes = asyncio.run(manifest())
    spec = pod["spec"]
    assert spec["host_users"] is False
    (container,) = spec["containers"]
    context = container["security_context"]     # KubeSpawner's, camelCase
    assert context["privileged"] is False and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}     # nothing added
    assert context["seccompProfile"] == {"type": "Localhost", "localhostProfile": "profiles/labkit.json"}
    assert context["runAsUser"] == 1000 and context["runAsNonRoot"] is True
    assert context["procMount"] == "Unmasked"           # allowed by the API only with hostUsers: false
    assert "securityContext" not in json.dumps(spec.get("init_containers") or [])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["LABKIT_CLASS_URL"].endswith("/services/labkit-class/")
    assert container["image"].startswith("labkit-singleuser:")
    assert "access:services!service=labkit-class" in spawner_scopes
