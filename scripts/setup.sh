#!/usr/bin/env bash
# Installs everything Ferry needs to build (and with --test, to be tested) on a fresh
# Debian machine with Rust. Idempotent: each step is skipped when already done.
# Pins are deliberate; see the comments for why each one matters.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/tools"
WITH_TESTS=false
[ "${1:-}" = "--test" ] && WITH_TESTS=true

WASM_BINDGEN_VERSION=0.2.130  # must equal the wasm-bindgen crate pinned in Cargo.toml
BINARYEN_VERSION=132.0.0      # Debian's binaryen 108 emits wasm that breaks hydration

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
APT_UPDATED=false
apt_install() {
  if ! $APT_UPDATED; then $SUDO apt-get update -qq; APT_UPDATED=true; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

step "Rust targets and components"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

step "wasm-bindgen-cli $WASM_BINDGEN_VERSION"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  # Not --locked: its lock file names a crate version the registry no longer has.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

step "Node.js and wasm-opt (binaryen $BINARYEN_VERSION) in tools/"
command -v npm >/dev/null || apt_install nodejs npm
if [ "$("$TOOLS/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact "binaryen@$BINARYEN_VERSION"
fi

if $WITH_TESTS; then
  step "Chromium, PostgreSQL and OpenLDAP (Debian packages)"
  missing=()
  command -v chromium >/dev/null || missing+=(chromium chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  # The live password checks bind to a real directory the tests start.
  [ -x /usr/sbin/slapd ] && [ -x /usr/sbin/slapadd ] || missing+=(slapd ldap-utils)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

  step "SCIM 2.0 test peer (PyPI scim2-server) in tools/scim-venv"
  "$ROOT/scripts/scim-peer.sh" >/dev/null

  step "Cognito emulator (PyPI moto) in tools/moto-venv"
  "$ROOT/scripts/moto.sh" >/dev/null

  step "Playwright (browser download disabled: Debian's Chromium is used)"
  if [ ! -d "$ROOT/end2end/node_modules/@playwright/test" ]; then
    (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
fi

echo "setup complete"
