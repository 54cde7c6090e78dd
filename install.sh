#!/usr/bin/env bash
# Install everything labkit needs on Debian or Ubuntu, as root: system tools, then a virtual
# environment in .venv with labkit (editable) and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
  echo "install.sh needs root (it installs Debian packages): run it with sudo" >&2
  exit 1
fi
PACKAGES="iproute2 nftables iptables iputils-ping curl libpcap0.8 tcpdump tshark procps sudo
          python3 python3-venv python3-pip chromium poppler-utils fonts-dejavu-core"
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
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "labkit installed: .venv/bin/labkit (try: sudo .venv/bin/labkit doctor)"
