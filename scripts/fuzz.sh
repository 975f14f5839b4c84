#!/usr/bin/env bash
# Runs the property tests over every reader and hash parser, and the damaged-archive
# test, for much longer than the test command does. Usage: scripts/fuzz.sh [CASES]
# (default 200000 cases a property; the test command runs 256). A failing case is
# kept in domain/tests/fuzz_readers.proptest-regressions and tried first from then on:
# commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-200000}
export CARGO_INCREMENTAL=0
echo "==> readers and hash parsers, $CASES cases each"
PROPTEST_CASES=$CASES cargo test --release -p domain --features verify --test fuzz_readers
echo "==> damaged gzip and zip uploads, $((CASES / 20)) cases"
FERRY_FUZZ_CASES=$((CASES / 20)) cargo test -p server --test it -- damaged_archives_end_read_or_failed
