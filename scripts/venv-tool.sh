#!/usr/bin/env bash
# Installs one PyPI package at a pinned version into its own virtualenv under tools/,
# idempotently (reinstalled only when the installed version differs), and prints the
# path of the executable asked for. Needs python3 with venv (installed from Debian
# when missing).
# Usage: scripts/venv-tool.sh VENV PACKAGE VERSION EXTRAS EXECUTABLE
#   e.g. scripts/venv-tool.sh moto-venv moto 5.2.5 "[server,cognitoidp]" moto_server
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/tools/$1"
PACKAGE=$2
VERSION=$3
EXTRAS=$4
EXECUTABLE=$5

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ "$("$VENV/bin/pip" show "$PACKAGE" 2>/dev/null | awk '/^Version:/ {print $2}')" != "$VERSION" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PACKAGE$EXTRAS==$VERSION"
fi
echo "$VENV/bin/$EXECUTABLE"
