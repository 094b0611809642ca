# Sourced by scripts/bench.sh after a run: write_report prints BENCHMARKS.md
# from the run's figures (the variables of results.sh) and the notes kept
# by hand in bench/findings.md.
# shellcheck shell=bash disable=SC2154

# ratio a b: a / b with two decimals, or "n/a".
ratio() {
    awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

# meets rps p99 min_rps max_p99: "yes" or "no".
meets() {
    awk -v rps="${1:-0}" -v p99="${2:-999999}" -v want="$3" -v limit="$4" \
        'BEGIN { print (rps >= want && p99 <= limit) ? "yes" : "no" }'
}

mb() { awk -v kb="${1:-0}" 'BEGIN { printf "%.0f", kb / 1024 }'; }

# row name label target_rps target_p99 baseline_name
row() {
    local name=$1 label=$2 want=$3 limit=$4 base=$5
    local rps p50 p99 errors rss brps bp99 met
    rps=$(eval echo "\${${name}_rps:-0}")
    p50=$(eval echo "\${${name}_p50:-}")
    p99=$(eval echo "\${${name}_p99:-}")
    errors=$(eval echo "\${${name}_errors:-}")
    rss=$(eval echo "\${${name}_peak_rss_kb:-0}")
    if [ -n "$base" ]; then
        brps=$(eval echo "\${${base}_rps:-0}")
        bp99=$(eval echo "\${${base}_p99:-}")
    fi
    if [ -n "$want" ]; then
        met=$(meets "$rps" "$p99" "$want" "$limit")
        target="≥ $want/s"
        [ "$limit" = 1000000 ] || target="$target, p99 ≤ $limit ms"
    else
        met="-"
        target="-"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$label" "$rps" "$p50" "$p99" "$errors" "$(mb "$rss")" \
        "${brps:--}" "${bp99:--}" "$([ -n "$base" ] && ratio "$brps" "$rps" || echo -)" \
        "$target" "$met"
}

write_report() {
    local cpu pg_version sqlite_version wrk_version kernel targets_a targets_c
    cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    kernel=$(uname -r)
    wrk_version=$(wrk --version 2>&1 | head -1 | awk '{print $1, $2}' || true)
    pg_version=$(psql "${database:-postgres://postgres@127.0.0.1:5432/postgres}" -Atc 'SHOW server_version' 2>/dev/null || echo "n/a")
    sqlite_version=$(sed -n 's/^version = "\(.*\)"/\1/p' <(grep -A1 'name = "libsqlite3-sys"' Cargo.lock) | head -1)
    if [ "$backend" = postgres ]; then
        targets_a=(3000 20) targets_b=(2500 25) targets_c=(1000 50)
    else
        targets_a=(2000 1000000) targets_b=("" "") targets_c=(300 1000000)
    fi
    cat <<EOF
# kluis benchmarks

Written by \`scripts/bench.sh\` (backend: **$backend**) on $(date -u +%Y-%m-%d). Run it again to
reproduce every figure below; only the notes at the end are written by hand
(\`bench/findings.md\`).

## Machine and versions

- CPU: $cpu, $(nproc) cores; $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; Linux $kernel
- kluis ${kluis_rev:-unknown}, $(rustc --version)
- PostgreSQL $pg_version, SQLite (libsqlite3-sys $sqlite_version, bundled), $wrk_version
- Server, database and load tool share the machine's cores.

## Data set

\`kluis-bench seed\` ($seed_args) in $seed_seconds s: 20 venues in six time zones, 50 resources
each, guests sealed with lookup tokens, reservations over two years, a staff account (role
\`staff\` in every venue) and a partner key for every venue, as the shipped policy has them.

## Method

Each scenario: wrk, $threads threads, 16 connections, ${seconds} s, after a warm-up; latency
figures are wrk's medians (p50) and 99th percentiles over every request of the run. An error
is any answer that is not HTTP 200 or carries GraphQL \`errors\`. The server runs with the
shipped settings except the rate-limit budgets (the load tool is one client on one address)
and the bulk-read rule (\`bulk_read_response = alert\`, \`bulk_read_minutes = 1\`: a day sheet per
request is a bulk read by definition, and its count runs over the principal's window).
Baselines run the same SQL through a pool opened with the same settings
(\`kluis-bench baseline\`), answered as JSON over HTTP by actix-web, without GraphQL,
authorization, audit or decryption. Ratio = baseline throughput / kluis throughput.

## Results

| scenario | req/s | p50 ms | p99 ms | errors | peak RSS MB | baseline req/s | baseline p99 ms | ratio | target | met |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
$(row availability "(a) availability, anonymous" "${targets_a[0]}" "${targets_a[1]}" base_availability)
$(row day_sheet "(b) staff day sheet, 20 with names" "${targets_b[0]}" "${targets_b[1]}" base_day_sheet)
$(row book "(c) partner booking, consent, idempotency key" "${targets_c[0]}" "${targets_c[1]}" "")
$(row lookup "(d) staff lookup by e-mail" "" "" base_lookup_token)
$(row base_lookup_plaintext "(d) baseline on a plaintext column" "" "" "")
$(row mixed "(e) mixed 80/15/5 of (a), (b), (c)" "" "" "")

- Encryption's cost on the lookup (baseline through the lookup token vs the plaintext
  column): **$(ratio "${base_lookup_plaintext_rps:-0}" "${base_lookup_token_rps:-0}")×** in throughput (target ≤ 1.2×);
  kluis's whole lookup against the plaintext baseline: $(ratio "${base_lookup_plaintext_rps:-0}" "${lookup_rps:-0}")×.
- Double bookings after (c) and (e), by query: **${double_bookings:-not checked}**.
- Slot conflicts answered SLOT_TAKEN during (c): ${book_slot_taken:-0}.

## Memory and start-up

| measure | figure | target |
| --- | --- | --- |
| RSS idle, after start on the seeded database | $(mb "${idle_rss_kb:-0}") MB | ≤ 30 MB |
| RSS idle, empty SQLite database | $(mb "${idle_empty_rss_kb:-0}") MB | ≤ 30 MB |
| RSS peak under load (any scenario above) | $(mb "$(printf '%s\n' "${availability_peak_rss_kb:-0}" "${day_sheet_peak_rss_kb:-0}" "${book_peak_rss_kb:-0}" "${lookup_peak_rss_kb:-0}" "${mixed_peak_rss_kb:-0}" | sort -n | tail -1)") MB | ≤ 100 MB |
| RSS idle, 5 s after the overload | $(mb "${idle_after_rss_kb:-0}") MB | |
| ready, \`kluis serve\` on the seeded database | ${ready_ms:-?} ms | |
| ready, empty SQLite file (migrations included) | ${ready_empty_sqlite_ms:-?} ms | ≤ 1000 ms |
| ready, SQLite restart | ${ready_sqlite_restart_ms:-?} ms | ≤ 1000 ms |

## Overload: 256 connections, mixed workload, ${seconds} s

| measure | figure |
| --- | --- |
| answered per second | ${overload_rps:-?} |
| p50 / p99 / max ms | ${overload_p50:-?} / ${overload_p99:-?} / ${overload_max:-?} |
| shed (503 or RATE_LIMITED) | ${overload_refused:-?} of ${overload_requests:-?} |
| other errors (incl. socket) | $(( ${overload_errors:-0} - ${overload_refused:-0} )) |
| peak RSS | $(mb "${overload_peak_rss_kb:-0}") MB (target: bounded, ≤ 100 MB) |
| server alive afterwards | ${overload_alive:-?} |
| back to normal p99 (≤ 1.5× of (a)'s) | after ${recovery_seconds:-?} one-second window(s) (target ≤ 5 s) |

EOF
    if [ -f bench/findings.md ]; then
        cat bench/findings.md
    fi
}
