#!/usr/bin/env bash
# The crash drill: a real run of USERS users (default 100000) into the SCIM peer
# through a proxy that answers at random with 429 (Retry-After: 1), 503, resets before
# and after the peer handled the request, and slow answers, while ferry is SIGKILLed
# and restarted KILLS times (default 20) — on SQLite with one instance, then on a
# PostgreSQL it starts here with two. Each pass first runs without kills or faults for
# the baseline time. It prints created / failed / skipped, the target's user count,
# duplicate externalIds (must be 0) and look-up requests.
# Usage: scripts/drill.sh [USERS] [KILLS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh --test >/dev/null
export CARGO_INCREMENTAL=0 FERRY_REQUIRE_SCIM_PEER=1
export FERRY_DRILL_USERS=${1:-100000}
KILLS=${2:-20}
WORK=$(mktemp -d /tmp/ferry-drill.XXXXXX)
chmod 755 "$WORK"
trap 'scripts/postgres.sh stop "$WORK/pg" || true; rm -rf "$WORK"' EXIT

drill() {
  cargo test --release -p server --test it -- --ignored --exact runs_http::drill --nocapture 2>&1 \
    | grep -E '^drill:|panicked|test result'
}

echo "==> SQLite, one instance: baseline (no kills, no faults)"
FERRY_DRILL_KILLS=0 FERRY_DRILL_FAULTS=0 drill
echo "==> SQLite, one instance: $KILLS kills with faults"
FERRY_DRILL_KILLS=$KILLS drill

FERRY_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$WORK/pg")
export FERRY_TEST_POSTGRES_URL FERRY_DRILL_POSTGRES=1 FERRY_DRILL_INSTANCES=2
echo "==> PostgreSQL, two instances: baseline (no kills, no faults)"
FERRY_DRILL_KILLS=0 FERRY_DRILL_FAULTS=0 drill
echo "==> PostgreSQL, two instances: $KILLS kills with faults"
FERRY_DRILL_KILLS=$KILLS drill
