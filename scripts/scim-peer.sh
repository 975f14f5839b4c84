#!/usr/bin/env bash
# Installs the SCIM 2.0 peer (PyPI scim2-server) into tools/scim-venv, idempotently:
# the tests and the benchmark push users into it. Needs python3 with venv (installed
# from Debian when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/tools/scim-venv"
SCIM2_SERVER_VERSION=0.8.3

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ "$("$VENV/bin/pip" show scim2-server 2>/dev/null | awk '/^Version:/ {print $2}')" != "$SCIM2_SERVER_VERSION" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$SCIM2_SERVER_VERSION"
fi
echo "$VENV/bin/scim2-server"
