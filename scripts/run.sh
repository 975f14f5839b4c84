#!/usr/bin/env bash
# Sets everything up, builds a release and starts Ferry on SQLite in ./data.
# The URL and, on first start, the one-time setup token appear in the log below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
export PATH="$ROOT/tools/node_modules/.bin:$PATH"

# cargo-leptos regenerates the browser bundle (wasm-bindgen, wasm-opt: about two
# minutes) on every build, even with nothing changed; a start whose sources are all
# older than the last build's stamp skips it.
STAMP="$ROOT/target/.ferry-release-built"
changed() {
  [ -f "$STAMP" ] && [ -x "$ROOT/target/release/ferry" ] && [ -d "$ROOT/target/site/pkg" ] || return 0
  [ -n "$(find Cargo.toml Cargo.lock app domain server style public migrations \
    -newer "$STAMP" -not -path '*/target/*' -print -quit 2>/dev/null)" ]
}
if changed; then
  printf '\n==> building Ferry (release)\n'
  # Stamped with the moment the build began: a file changed during it builds again.
  touch "$STAMP.next"
  cargo leptos build --release
  mv "$STAMP.next" "$STAMP"
else
  printf '\n==> Ferry is built and nothing changed since (delete %s to build again)\n' "$STAMP"
fi

export LEPTOS_SITE_ROOT="$ROOT/target/site"
export FERRY_DATA_DIR="${FERRY_DATA_DIR:-$ROOT/data}"
export FERRY_LISTEN="${FERRY_LISTEN:-127.0.0.1:3000}"
printf '\n==> starting Ferry on http://%s (data in %s; Ctrl-C stops it)\n\n' "$FERRY_LISTEN" "$FERRY_DATA_DIR"
exec "$ROOT/target/release/ferry" "$@"
