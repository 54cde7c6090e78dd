#!/usr/bin/env bash
# Install everything labkit needs on Debian or Ubuntu, as root: system tools, then a virtual
# environment in .venv with labkit (editable) and its test tools. Safe to run again.
#   ./install.sh              labkit, its tools, its tests
#   ./install.sh --classroom  also a class on JupyterHub: jupyterhub, and configurable-http-proxy
#                             from npm on Debian's nodejs (examples/jupyterhub; the whole suite),
#                             kubespawner and libseccomp's binding (deploy/kubernetes's tests)
#   ./install.sh --image      a student's server in a container (deploy/kubernetes/Dockerfile):
#                             labkit, its tools and jupyterhub-singleuser; no browser, no tests
set -euo pipefail
cd "$(dirname "$0")"
CLASSROOM=no
IMAGE=no
for arg in "$@"; do
  case "$arg" in
    --classroom) CLASSROOM=yes ;;
    --image) IMAGE=yes ;;
    *) echo "usage: ./install.sh [--classroom | --image]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "install.sh needs root (it installs Debian packages): run it with sudo" >&2
  exit 1
fi
PACKAGES="iproute2 nftables iptables iputils-ping curl libpcap0.8 tcpdump tshark procps sudo dnsmasq-base
          python3 python3-venv python3-pip"
[ "$IMAGE" = yes ] || PACKAGES="$PACKAGES chromium poppler-utils fonts-dejavu-core"   # handouts, browser tests
if [ "$CLASSROOM" = yes ]; then   # a machine with NodeSource's nodejs has npm with it
  PACKAGES="$PACKAGES libseccomp2"
  command -v node >/dev/null || PACKAGES="$PACKAGES nodejs"
  command -v npm >/dev/null || PACKAGES="$PACKAGES npm"
fi
missing=$(for p in $PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ "$CLASSROOM" = yes ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,classroom]'
  command -v configurable-http-proxy >/dev/null || npm install -g --no-fund --no-audit configurable-http-proxy
elif [ "$IMAGE" = yes ]; then     # jupyterhub for jupyterhub-singleuser
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir '.[image]'
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
fi
echo "labkit installed: .venv/bin/labkit (try: sudo .venv/bin/labkit doctor)"
