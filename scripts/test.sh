#!/usr/bin/env bash
# Sets everything up and runs every test: formatting, lints (server and browser
# builds), the Rust tests with the store suite on SQLite and on a PostgreSQL server
# started here, the domain's wasm build, and the Playwright tests in Chromium against
# a release build.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh --test
export PATH="$ROOT/tools/node_modules/.bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
# A fresh clone gains nothing from incremental caches, which take gigabytes.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
WORK=$(mktemp -d /tmp/ferry-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  scripts/postgres.sh stop "$WORK/pg" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (server build)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy (browser build)"
cargo clippy -p app --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings

step "domain builds for wasm32-unknown-unknown"
cargo build -p domain --target wasm32-unknown-unknown

step "starting PostgreSQL for the store tests"
FERRY_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$WORK/pg")
export FERRY_TEST_POSTGRES_URL FERRY_REQUIRE_POSTGRES=1
# The SCIM client's tests push into the real peer the setup installed.
export FERRY_REQUIRE_SCIM_PEER=1
# The live password checks ask a real slapd and the moto emulator the setup installed.
export FERRY_REQUIRE_LEGACY_PEERS=1
echo "PostgreSQL at $FERRY_TEST_POSTGRES_URL"

step "cargo test (SQLite and PostgreSQL)"
cargo test --workspace

if [ -n "${CI:-}" ]; then
  # A clean clone will not build in debug again: its gigabytes make room for the
  # release build on a small disk.
  rm -rf target/debug
fi

step "release build for the browser tests"
scripts/build-release.sh

step "Playwright in Chromium"
(cd end2end && FERRY_BINARY="$ROOT/target/release/ferry" FERRY_SITE_ROOT="$ROOT/target/site" npx playwright test)

echo
echo "all tests passed"
