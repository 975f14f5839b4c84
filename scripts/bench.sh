#!/usr/bin/env bash
# Ferry's benchmarks. Builds the release binary, writes synthetic 1,000,000-user exports
# (generic CSV and a Keycloak realm) with `ferry-bench gen-export` unless they exist, and
# reads each into a fresh SQLite database with `ferry-bench bench-ingest`, one process per
# file so each peak memory figure is its own, then computes each file's assessment
# report (time, rate, its own peak memory). Then the SCIM client: 100,000 users pushed
# into an in-process null target and into the real SCIM peer, beside the peer's own
# ceiling. Then the run engine end to end: the same number of users imported, mapped
# and run into the null target and the peer (beside its ceiling) on SQLite, and on a
# PostgreSQL server started for the purpose; support staff's queue with a million failed
# users on both databases; and the password verification service (start, poll, status
# at 1, 16 and 64 logins at once, salted SHA-256 and bcrypt) on both databases; and a
# reconciliation of the 1,000,000 users read back from the null target on both.
# Usage: scripts/bench.sh [USERS] [SCIM_USERS]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
USERS=${1:-1000000}
SCIM_USERS=${2:-100000}
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

printf '==> building ferry-bench (release)\n'
cargo build --release -p ferry-bench --bin ferry-bench
FERRY="$ROOT/target/release/ferry-bench"

for format in csv keycloak; do
    case $format in
        csv) file="$OUT/users-$USERS.csv" ;;
        keycloak) file="$OUT/realm-$USERS.json" ;;
    esac
    if [ ! -s "$file" ]; then
        printf '==> writing %s users as %s\n' "$USERS" "$format"
        "$FERRY" gen-export --format "$format" --users "$USERS" --seed 1 --out "$file.part"
        mv "$file.part" "$file"
    fi
done

printf '\n==> reading (%s, %s cores)\n' "$(uname -m)" "$(nproc)"
"$FERRY" bench-ingest --assess "$OUT/users-$USERS.csv"
"$FERRY" bench-ingest --assess "$OUT/realm-$USERS.json"

printf '\n==> mapping engine (1,000,000 records)\n'
"$FERRY" bench-map --records 1000000

printf '\n==> SCIM client (%s users)\n' "$SCIM_USERS"
PEER=$(scripts/scim-peer.sh)
"$FERRY" bench-scim --users "$SCIM_USERS" --peer "$PEER"

printf '\n==> run engine (%s users, SQLite and PostgreSQL)\n' "$SCIM_USERS"
PGDIR="$OUT/postgres"
PGURL=$(scripts/postgres.sh start "$PGDIR")
trap 'scripts/postgres.sh stop "$PGDIR" >/dev/null 2>&1 || true' EXIT
# An empty database on the server started above, for one benchmark.
fresh_db() {
    python3 - "$PGURL" "$1" <<'PY'
import sys, subprocess, glob
url, name = sys.argv[1], sys.argv[2]
psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
subprocess.run([psql, url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
PY
}
BENCH_DB="ferry_bench_$$"
fresh_db "$BENCH_DB"
"$FERRY" bench-run --users "$SCIM_USERS" --peer "$PEER" --postgres "${PGURL%/*}/$BENCH_DB"

printf '\n==> review queue (1,000,000 failed users, SQLite and PostgreSQL)\n'
REVIEW_DB="ferry_review_bench_$$"
fresh_db "$REVIEW_DB"
"$FERRY" bench-review --failed 1000000 --postgres "${PGURL%/*}/$REVIEW_DB"

printf '\n==> password verification service (SQLite and PostgreSQL)\n'
PASSWORDS_DB="ferry_passwords_bench_$$"
fresh_db "$PASSWORDS_DB"
"$FERRY" bench-passwords --postgres "${PGURL%/*}/$PASSWORDS_DB"

printf '\n==> reconciliation (%s users read back from the null target, SQLite and PostgreSQL; %s from scim2-server against its own read ceiling)\n' "$USERS" "$SCIM_USERS"
RECONCILE_DB="ferry_reconcile_bench_$$"
fresh_db "$RECONCILE_DB"
"$FERRY" bench-reconcile --users "$USERS" --peer "$PEER" --peer-users "$SCIM_USERS" \
  --postgres "${PGURL%/*}/$RECONCILE_DB"
