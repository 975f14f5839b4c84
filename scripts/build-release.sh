#!/usr/bin/env bash
# Builds the release (server binary and browser bundle) unless nothing it is built from
# changed since the last build: cargo-leptos regenerates the browser bundle
# (wasm-bindgen, wasm-opt: about two minutes) on every build, even with nothing changed.
# Delete target/.ferry-release-built to force a build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STAMP="$ROOT/target/.ferry-release-built"
changed() {
  [ -f "$STAMP" ] && [ -x "$ROOT/target/release/ferry" ] && [ -d "$ROOT/target/site/pkg" ] || return 0
  [ -n "$(find Cargo.toml Cargo.lock app domain server style public migrations \
    -newer "$STAMP" -not -path '*/target/*' -print -quit 2>/dev/null)" ]
}
if changed; then
  # Stamped with the moment the build began: a file changed during it builds again.
  mkdir -p target
  touch "$STAMP.next"
  cargo leptos build --release
  mv "$STAMP.next" "$STAMP"
else
  printf 'the release is built and nothing changed since (delete %s to build again)\n' "$STAMP"
fi
