#!/usr/bin/env bash
# Builds the release — the server binary and the browser bundle in target/site — unless
# nothing it is built from changed since the last build (delete target/.ferry-release-built
# to force one). It runs the steps cargo-leptos would, with the tools setup.sh installs
# (cargo, wasm-bindgen, wasm-opt), so cargo-leptos itself need not be built: that alone
# took 10-16 minutes of a first start. The settings are Cargo.toml's
# [workspace.metadata.leptos]; the environment is the one cargo-leptos gives its builds,
# so both share one build cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/tools/node_modules/.bin:$PATH"
STAMP="$ROOT/target/.ferry-release-built"
SITE="$ROOT/target/site"
PKG="$SITE/pkg"
changed() {
  [ -f "$STAMP" ] && [ -x "$ROOT/target/release/ferry" ] && [ -f "$PKG/ferry.wasm" ] || return 0
  [ -n "$(find Cargo.toml Cargo.lock app domain server style public migrations \
    -newer "$STAMP" -not -path '*/target/*' -print -quit 2>/dev/null)" ]
}
if ! changed; then
  printf 'the release is built and nothing changed since (delete %s to build again)\n' "$STAMP"
  exit 0
fi
# Stamped with the moment the build began: a file changed during it builds again.
mkdir -p target
touch "$STAMP.next"

export LEPTOS_OUTPUT_NAME=ferry LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=app \
  LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=true LEPTOS_HASH_FILES=false

echo "building the browser bundle (wasm)"
cargo build --package=app --lib --target-dir=target/front --target=wasm32-unknown-unknown \
  --no-default-features --features=hydrate --profile=wasm-release
echo "building the server"
cargo build --package=server --bin=ferry --release

# Written beside the live site and swapped in whole: a running Ferry never serves half
# a bundle.
NEXT="$ROOT/target/site.next"
rm -rf "$NEXT"
mkdir -p "$NEXT/pkg"
wasm-bindgen --target=web --no-typescript --out-name=ferry --out-dir="$NEXT/pkg" \
  target/front/wasm32-unknown-unknown/wasm-release/app.wasm
# Leptos's hydration script asks for <name>.wasm when built with LEPTOS_OUTPUT_NAME.
mv "$NEXT/pkg/ferry_bg.wasm" "$NEXT/pkg/ferry.wasm"
echo "optimizing the bundle (wasm-opt)"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$NEXT/pkg/ferry.wasm" -o "$NEXT/pkg/ferry.wasm"
cp style/main.css "$NEXT/pkg/ferry.css"
cp -R public/. "$NEXT/"
rm -rf "$SITE.old"
[ -d "$SITE" ] && mv "$SITE" "$SITE.old"
mv "$NEXT" "$SITE"
rm -rf "$SITE.old"
mv "$STAMP.next" "$STAMP"
