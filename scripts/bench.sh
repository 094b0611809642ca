#!/usr/bin/env bash
# Reproduces BENCHMARKS.md with one command: builds the release binaries,
# installs wrk if missing, seeds the data set (`kluis-bench seed`), starts
# `kluis serve` and `kluis-bench baseline` on it, drives every load scenario
# with wrk (scripts/wrk/scenario.lua) and writes the report.
#
#   scripts/bench.sh                      # PostgreSQL, full data set
#   BENCH_BACKEND=sqlite scripts/bench.sh
#
# Settings (environment):
#   BENCH_BACKEND   postgres (default) or sqlite
#   BENCH_DATABASE  PostgreSQL URL of a database this script may drop and
#                   re-create (default postgres://postgres@127.0.0.1:5432/kluis_bench)
#   BENCH_SEED      extra `kluis-bench seed` flags, e.g. "--guests 20000
#                   --reservations 40000" for a quick run (default: full size)
#   BENCH_REUSE=1   keep the database and fixture of the previous run
#   BENCH_SECONDS   seconds per scenario (default 30)
#   BENCH_REPORT    where to write the report (default BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${BENCH_BACKEND:-postgres}
seconds=${BENCH_SECONDS:-30}
report=${BENCH_REPORT:-BENCHMARKS.md}
work=target/bench/$backend
mkdir -p "$work"
work=$(cd "$work" && pwd)
results=$work/results.sh
fixture=$work/fixture.lua
connections=16
threads=2
kluis_port=8780
baseline_port=8781

say() { printf '\n== %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    say "installing wrk"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y wrk >/dev/null
fi

say "building release binaries"
cargo build --release --locked -p api -p kluis-bench
kluis=$PWD/target/release/kluis
bench=$PWD/target/release/kluis-bench

case "$backend" in
postgres)
    database=${BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/kluis_bench}
    admin_url=${database%/*}/postgres
    db_name=${database##*/}
    ;;
sqlite)
    database=sqlite://$work/kluis.db
    ;;
*)
    echo "BENCH_BACKEND must be postgres or sqlite" >&2
    exit 2
    ;;
esac

export KLUIS_DATABASE_URL=$database
export KLUIS_KEY_FILE=$work/bench.key
export KLUIS_ENV=production
export KLUIS_BEHIND_PROXY=true
export KLUIS_BIND=127.0.0.1:$kluis_port
export KLUIS_LOG_FORMAT=json
export RUST_LOG=warn
# The load tool is one client on one address with one session and one key:
# its budgets are raised so that the scenarios measure the work, not the
# limiter, and the bulk-read rule (which a day sheet per request trips at
# once) only alerts, over a one-minute window. Everything else (guards,
# audit, decryption) is as shipped.
export KLUIS_RATE_LIMITS__ADDRESS_PER_MINUTE=100000000
export KLUIS_RATE_LIMITS__SESSION_PER_MINUTE=100000000
export KLUIS_RATE_LIMITS__API_KEY_PER_MINUTE=100000000
export KLUIS_RATE_LIMITS__COMPLEXITY_PER_MINUTE=4000000000
export KLUIS_MONITORING__BULK_READ_RECORDS=1000000 KLUIS_MONITORING__BULK_READ_MINUTES=1
export KLUIS_MONITORING__BULK_READ_RESPONSE=alert

if [ "${BENCH_REUSE:-0}" != 1 ] || [ ! -f "$fixture" ]; then
    say "seeding the data set ($backend) ${BENCH_SEED:-full size}"
    if [ "$backend" = postgres ]; then
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name"
        psql "$database" -qc "CREATE EXTENSION IF NOT EXISTS btree_gist"
    else
        rm -f "$work"/kluis.db*
    fi
    rm -f "$KLUIS_KEY_FILE" "$work/booking-offset"
    [ -f "$KLUIS_KEY_FILE" ] || "$kluis" keys generate --out "$KLUIS_KEY_FILE" >/dev/null
    seed_started=$(date +%s)
    # shellcheck disable=SC2086
    "$bench" seed --plaintext-baseline --fixture "$fixture" ${BENCH_SEED:-}
    echo "seed_seconds=$(($(date +%s) - seed_started))" >"$work/seed.sh"
    # Fresh statistics for the planner, as after any bulk load.
    [ "$backend" = postgres ] && psql "$database" -qc "VACUUM ANALYZE"
    echo "seed_args='${BENCH_SEED:-full size}'" >>"$work/seed.sh"
fi
: >"$results"
cat "$work/seed.sh" >>"$results"
# The code measured, as the run starts (the notes may change afterwards).
echo "kluis_rev='$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/findings.md' ':!BENCHMARKS*.md' || echo ' (with local changes)')'" >>"$results"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

wait_ready() { # url, pid
    for _ in $(seq 1 3000); do
        if curl -fs -o /dev/null "$1"; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

start_kluis() {
    local started
    started=$(now_ms)
    "$kluis" serve >>"$work/kluis.log" 2>&1 &
    kluis_pid=$!
    pids+=("$kluis_pid")
    wait_ready "http://127.0.0.1:$kluis_port/healthz" "$kluis_pid" || {
        tail -20 "$work/kluis.log" >&2
        exit 1
    }
    echo "ready_ms=$(($(now_ms) - started))" >>"$results"
}

say "start-up on an empty SQLite database"
(
    export KLUIS_DATABASE_URL=sqlite://$work/empty.db
    export KLUIS_BIND=127.0.0.1:8782
    rm -f "$work"/empty.db*
    started=$(now_ms)
    "$kluis" serve >>"$work/empty.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:8782/healthz" "$pid"
    echo "ready_empty_sqlite_ms=$(($(now_ms) - started))" >>"$results"
    # And again on the now migrated file: a restart.
    kill "$pid" && wait "$pid" 2>/dev/null || true
    started=$(now_ms)
    "$kluis" serve >>"$work/empty.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:8782/healthz" "$pid"
    echo "ready_sqlite_restart_ms=$(($(now_ms) - started))" >>"$results"
    sleep 2
    echo "idle_empty_rss_kb=$(rss_kb "$pid")" >>"$results"
    kill "$pid" && wait "$pid" 2>/dev/null || true
)

say "starting kluis serve and the baseline server"
: >"$work/kluis.log"
start_kluis
"$bench" baseline --listen "127.0.0.1:$baseline_port" >>"$work/baseline.log" 2>&1 &
baseline_pid=$!
pids+=("$baseline_pid")
wait_ready "http://127.0.0.1:$baseline_port/availability?venue=x&date=2026-01-01" "$baseline_pid" || true
sleep 2
echo "idle_rss_kb=$(rss_kb "$kluis_pid")" >>"$results"

staff_password=$(sed -n 's/^  staff_password = "\(.*\)",$/\1/p' "$fixture")
login_body='{"query":"mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }","variables":{"e":"staff@bench.example","p":"'$staff_password'"}}'
staff_token=$(curl -fs -H 'Content-Type: application/json' -d "$login_body" \
    "http://127.0.0.1:$kluis_port/graphql" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$staff_token" ] || {
    echo "staff login failed" >&2
    exit 1
}

export BENCH_FIXTURE=$fixture BENCH_SCENARIOS=$PWD/bench/scenarios BENCH_RESULTS=$results
export BENCH_STAFF_TOKEN=$staff_token BENCH_THREADS=$threads BENCH_RUN=$(date +%s)

# Runs one scenario: name, scenario, port, connections, seconds. Records
# the server's peak RSS during the run.
load() {
    local name=$1 scenario=$2 port=$3 conns=$4 secs=$5 peak=0 sampler
    (
        while kill -0 "$kluis_pid" 2>/dev/null; do
            rss_kb "$kluis_pid"
            sleep 0.2
        done
    ) >"$work/rss.$name" &
    sampler=$!
    BENCH_NAME=$name BENCH_SCENARIO=$scenario BENCH_BOOKING_OFFSET=$(cat "$work/booking-offset" 2>/dev/null || echo 0) \
        wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s -s scripts/wrk/scenario.lua \
        "http://127.0.0.1:$port" >"$work/wrk.$name.txt" 2>&1 || true
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak=$(sort -n "$work/rss.$name" | tail -1)
    echo "${name}_peak_rss_kb=${peak:-0}" >>"$results"
    grep -h "first error" "$work/wrk.$name.txt" >&2 || true
    # Bookings of the next run start after this one's.
    if [ "$scenario" = book ] || [ "$scenario" = mixed ]; then
        local made
        made=$(sed -n "s/^${name}_requests=//p" "$results")
        echo $(($(cat "$work/booking-offset" 2>/dev/null || echo 0) + made + 1000)) >"$work/booking-offset"
    fi
    sed -n "s/^${name}_\(rps\|p50\|p99\|errors\)=/  \1=/p" "$results" | tr '\n' ' ' >&2
    echo >&2
}

say "warming up"
load warmup availability $kluis_port $connections 5 >/dev/null
load warmup_sheet day_sheet $kluis_port $connections 5 >/dev/null

for pair in availability:base_availability day_sheet:base_day_sheet lookup:base_lookup_token \
    :base_lookup_plaintext; do
    scenario=${pair%%:*} baseline=${pair##*:}
    if [ -n "$scenario" ]; then
        say "scenario $scenario"
        load "$scenario" "$scenario" $kluis_port $connections "$seconds"
    fi
    say "baseline $baseline"
    load "$baseline" "$baseline" $baseline_port $connections "$seconds"
done

say "scenario book"
book_started=$(date +%s)
load book book $kluis_port $connections "$seconds"
say "scenario mixed"
load mixed mixed $kluis_port $connections "$seconds"
if "$bench" check --since "$book_started" >"$work/check.txt" 2>&1; then
    echo "double_bookings=0" >>"$results"
else
    echo "double_bookings=$(sed -n 's/.*: \([0-9]*\)$/\1/p' "$work/check.txt")" >>"$results"
fi

say "overload: 256 connections"
load overload mixed $kluis_port 256 "$seconds"
echo "overload_alive=$(kill -0 "$kluis_pid" 2>/dev/null && echo yes || echo no)" >>"$results"
# Recovery: one-second windows of the availability scenario until its p99
# is back within 1.5 times the p99 measured before the overload.
# shellcheck disable=SC1090
. "$results"
recovered=none
for window in 1 2 3 4 5 6 7 8 9 10; do
    load "recovery_$window" availability $kluis_port $connections 1 2>/dev/null
    . "$results"
    p99_var="recovery_${window}_p99"
    if awk -v now="${!p99_var}" -v before="$availability_p99" 'BEGIN { exit !(now <= before * 1.5) }'; then
        recovered=$window
        break
    fi
done
echo "recovery_seconds=$recovered" >>"$results"
sleep 5
echo "idle_after_rss_kb=$(rss_kb "$kluis_pid")" >>"$results"

say "writing $report"
# shellcheck disable=SC1090
. "$results"
. "$(dirname "$0")/bench-report.sh"
write_report >"$report"
echo "wrote $report" >&2
