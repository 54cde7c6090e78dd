# JupyterHub for a class on one Linux server, no root for any student: each student's
# Jupyter server runs as the student, and labkit's kernel "Python (labkit lab)" runs every
# notebook in that student's own world of user namespaces (see README.md, "Without root").
#
# Set-up, as root, once (the paths are this example's; keep them readable by every user):
#   apt-get install iproute2 nftables iptables iputils-ping curl tcpdump python3-venv nodejs npm
#   git clone ... /opt/labkit && cd /opt/labkit && ./install.sh      (python3: a system path)
#   /opt/labkit/.venv/bin/pip install jupyterhub jupyterlab && npm install -g configurable-http-proxy
#   /opt/labkit/.venv/bin/labkit install-kernel --prefix /usr/local   (the kernel, for everyone)
#   /opt/labkit/.venv/bin/labkit doctor                               (normal users may have worlds?)
#   /opt/labkit/.venv/bin/jupyterhub -f /opt/labkit/examples/jupyterhub/jupyterhub_config.py
#   (./install.sh --classroom installs jupyterhub and configurable-http-proxy)
import os

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

LABKIT = os.environ.get("LABKIT_HOME", "/opt/labkit")        # the checkout, with its .venv
STATE = os.environ.get("LABKIT_CLASS_STATE", "/var/lib/labkit")  # the class's records (root's)

# Behind a TLS reverse proxy (nginx, caddy): the hub itself listens on loopback only.
c.JupyterHub.bind_url = "http://127.0.0.1:8000"

# Students log in with their Unix accounts; only those listed (or a group) may.
c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
c.Authenticator.allowed_users = {"student01", "student02"}
c.Authenticator.admin_users = {"teacher"}

# Each student's server runs as the student (JupyterHub's default spawner, named here).
# With systemd, systemdspawner.SystemdSpawner also caps memory and CPU per student, and ends
# the student's world with the server (the keeper is in the server's cgroup):
#   c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
#   c.SystemdSpawner.mem_limit = "1G"      # a world at publish with a capture: ~110 MiB
#   c.SystemdSpawner.cpu_limit = 1.0
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [f"{LABKIT}/.venv/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# `labkit` in the student's terminals (it enters the same world as the kernel)
c.Spawner.environment = {"PATH": f"{LABKIT}/.venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
# Every notebook on the labkit kernel, which labkit installed for all in /usr/local. Kernels
# talk to their server over Unix sockets in the student's runtime directory, not loopback TCP
# ports: with a class of servers each picking free ports, two kernels can be given the same
# port, and the second then dies at every restart (1 of 30 students in benchmarks/classroom.py)
c.Spawner.args = ["--MappingKernelManager.default_kernel_name=labkit",
                  "--KernelSpecManager.allowed_kernelspecs=labkit",
                  "--KernelManager.transport=ipc"]

# A student's world outlives an idle server only as a 1 MiB keeper (its labs stay up); stop
# idle servers after an hour (pip install jupyterhub-idle-culler):
#   c.JupyterHub.services = [{"name": "idle-culler", "command": [
#       f"{LABKIT}/.venv/bin/python", "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
#   c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
#       "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]

# The instructors' live view of every student's checks (labkit.classroom.service): each
# check a student makes is posted there with the token the hub gives the student's server;
# the page is at /services/labkit-class/ for the members of the group "instructors".
c.JupyterHub.load_groups = {"instructors": {"users": ["teacher"]}}
c.JupyterHub.services = [
    {"name": "labkit-class", "url": "http://127.0.0.1:10101", "oauth_no_confirm": True,
     "command": [f"{LABKIT}/.venv/bin/python", "-m", "labkit.classroom.service"],
     "environment": {"LABKIT_CLASS_DB": f"{STATE}/class.sqlite"}},
]
c.JupyterHub.load_roles = [
    {"name": "labkit-class", "services": ["labkit-class"], "scopes": ["read:users:groups"]},
    {"name": "user", "scopes": ["self", "access:services!service=labkit-class"]},
]
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=labkit-class"]
c.Spawner.environment["LABKIT_CLASS_URL"] = "http://127.0.0.1:8000/services/labkit-class/"
