#!/usr/bin/env bash
# Sets everything up, builds a release and starts Ferry on SQLite in ./data.
# The URL and, on first start, the one-time setup token appear in the log below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
export PATH="$ROOT/tools/node_modules/.bin:$PATH"

printf '\n==> building Ferry (release)\n'
scripts/build-release.sh

export LEPTOS_SITE_ROOT="$ROOT/target/site"
export FERRY_DATA_DIR="${FERRY_DATA_DIR:-$ROOT/data}"
export FERRY_LISTEN="${FERRY_LISTEN:-127.0.0.1:3000}"
printf '\n==> starting Ferry on http://%s (data in %s; Ctrl-C stops it)\n\n' "$FERRY_LISTEN" "$FERRY_DATA_DIR"
exec "$ROOT/target/release/ferry" "$@"
