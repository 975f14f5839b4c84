#!/usr/bin/env bash
# Installs the moto server (PyPI, a third-party emulator of AWS's APIs) into
# tools/moto-venv, idempotently: the tests check passwords live against Cognito's
# InitiateAuth as moto serves it. Needs python3 with venv (installed from Debian
# when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/tools/moto-venv"
MOTO_VERSION=5.2.5

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ "$("$VENV/bin/pip" show moto 2>/dev/null | awk '/^Version:/ {print $2}')" != "$MOTO_VERSION" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server,cognitoidp]==$MOTO_VERSION"
fi
echo "$VENV/bin/moto_server"
