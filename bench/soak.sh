#!/usr/bin/env bash
# Soak: does the gateway's memory stay flat under sustained load? wrk (bench/chat.lua, non-streaming
# chat completions) at 64 connections against the gateway in front of the fake upstream for SECONDS,
# run as consecutive 30 s wrk runs so that requests/s, latency and errors are known per interval
# (wrk reports only totals); the gateway's VmRSS and RssAnon are sampled every 5 s meanwhile.
#
# Reported: the RSS after the warm-up (the first sample 30 s or more into the load), the max, the
# last, the total requests, the growth after warm-up (last - warm-up) in MB and in KB per 100 000
# requests, the same growth from a least-squares line through every sample after warm-up (against
# requests served, so one noisy sample does not decide it), and a verdict: `grows` when both exceed
# BENCH_SOAK_FLAT_KB (default 4096 KB over the run, about 4 bytes per request over 1 M requests) and
# the second half of the run alone still rises by more than half of that (a leak keeps rising; a
# cache or malloc arena that filled once early on does not), else `flat`.
#
# Usage: bench/soak.sh [SECONDS]        (default 600; BENCH_SOAK=SECONDS bench/run.sh runs it after
#                                        run.sh's own tables, 1 meaning 600)
# Environment: BENCH_SOAK_CONNECTIONS (64), BENCH_SOAK_CHUNK (seconds per wrk run, 30),
#   BENCH_SOAK_WARMUP (seconds, 30), BENCH_SOAK_SAMPLE (seconds between RSS samples, 5),
#   BENCH_SOAK_FLAT_KB (4096), BENCH_PIN=1
#   (gateway on CPU 1; upstream and wrk on CPU 0), BENCH_GATEWAY=PATH, BENCH_NO_BUILD=1 (as run.sh).
# At this machine's ~4 000-6 000 requests/s, 600 s is 2.5-3.5 M requests; 1 M takes 3-5 minutes.
# Output kept in bench/results/soak-*.txt, with the servers' logs and the raw RSS samples beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK=${1:-${BENCH_SOAK:-600}}
[[ $SOAK == 1 ]] && SOAK=600
[[ $SOAK =~ ^[0-9]+$ ]] && ((SOAK >= 10)) || { echo "error: the soak needs SECONDS >= 10 (got $SOAK)" >&2; exit 2; }
CONNECTIONS=${BENCH_SOAK_CONNECTIONS:-64}
CHUNK=${BENCH_SOAK_CHUNK:-30}
SAMPLE=${BENCH_SOAK_SAMPLE:-5}
WARMUP=${BENCH_SOAK_WARMUP:-30}
FLAT_KB=${BENCH_SOAK_FLAT_KB:-4096}
UPSTREAM_PORT=18141
GATEWAY_PORT=18142
BIN=.build/release
GATEWAY_BIN=${BENCH_GATEWAY:-$BIN/switchyard}
WORK=$(mktemp -d)
mkdir -p bench/results
OUT=bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$OUT") 2>&1

PIDS=()
# stop_pids, port_in_use, start, alive, field, vm, proc_ticks, busy_ticks, children_ticks
source "$(dirname "$0")/lib.sh"
cleanup() {
    stop_pids "${PIDS[@]}"
    for log in "$WORK"/*.log "$WORK"/rss; do [[ -e $log ]] && cp "$log" "${OUT%.txt}-$(basename "$log")"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ${BENCH_PIN:-0} == 1 ]]; then
    GATEWAY_CPU=(taskset -c 1) OTHERS_CPU=(taskset -c 0)
else
    GATEWAY_CPU=() OTHERS_CPU=()
fi

# Sets KIDS to the CPU time (ticks) of this shell's finished children (wrk): `times` in this shell.
kids_ticks() {
    builtin times >"$TIMES"
    KIDS=$(children_ticks)
}

# --- tools and binaries -------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    echo "building release binaries"
    timeout 1800 swift build -c release --product switchyard
    timeout 1800 swift build -c release --product switchyard-fake-upstream
fi
for port in $UPSTREAM_PORT $GATEWAY_PORT; do
    if port_in_use "$port"; then echo "error: port $port is already in use on 127.0.0.1" >&2; exit 1; fi
done

cat >"$WORK/gateway.yaml" <<EOF
server: {host: 127.0.0.1, port: $GATEWAY_PORT}
log_level: error
database: sqlite:$WORK/bench.sqlite
admin_key: bench-admin-$RANDOM$RANDOM
providers:
  fake: {kind: openai, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", max_connections: 256}
models:
  bench: {deployments: [{provider: fake, model: bench-upstream}]}
$BENCH_LIMITS_YAML
EOF

echo "== soak: ${SOAK}s of wrk at $CONNECTIONS connections against the gateway, ${CHUNK}s per wrk run, RSS every ${SAMPLE}s"
echo "cpus: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
echo "$BENCH_LIMITS_LINE"
if [[ -n ${BENCH_GATEWAY:-} ]]; then
    echo "build: gateway $GATEWAY_BIN (given by BENCH_GATEWAY)"
else
    echo "build: release; commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + uncommitted changes')"
fi
echo "pinning: $([[ ${BENCH_PIN:-0} == 1 ]] && echo 'gateway on CPU 1; upstream and wrk on CPU 0' || echo 'none (all processes share both cores)')"
echo "load average before start: $(cut -d" " -f1-3 /proc/loadavg)"

start upstream "fake upstream listening" "${OTHERS_CPU[@]}" "$BIN/switchyard-fake-upstream" --port $UPSTREAM_PORT
UPSTREAM=$STARTED
start gateway "switchyard listening" "${GATEWAY_CPU[@]}" "$GATEWAY_BIN" serve --config "$WORK/gateway.yaml"
GATEWAY=$STARTED
KEY=$(grep -o 'sk-sy-[A-Za-z0-9]*' "$WORK/gateway.log" | head -1 || true)
[[ -n $KEY ]] || { echo "error: the gateway printed no demo key" >&2; exit 1; }
echo "auth: the demo account's key (authentication, hold, ledger and settlement in every request)"
RSS_START=$(vm VmRSS "$GATEWAY")

# The sampler: one line per SAMPLE seconds, "ms-since-start VmRSS RssAnon", bounded by the soak's length.
T0=$(date +%s%N)
(
    deadline=$((SECONDS + SOAK + 120))
    while ((SECONDS < deadline)) && alive "$GATEWAY"; do
        echo "$((($(date +%s%N) - T0) / 1000000)) $(vm VmRSS "$GATEWAY") $(vm RssAnon "$GATEWAY")"
        sleep "$SAMPLE"
    done
) >"$WORK/rss" &
SAMPLER=$!
PIDS+=("$SAMPLER")

STATUS=0
row() { printf "%6s | %8s | %7s | %8s %8s | %6s | %9s %9s | %6s | %s\n" "$@"; }
echo
row "t (s)" requests "req/s" "p50 us" "p99 us" errors "RSS KB" "anon KB" "cpu us" "other cpu"
row "" "" "" "" "" "" "(end)" "(end)" "/req" ""
elapsed=0 chunk=0
while ((elapsed < SOAK)); do
    d=$((SOAK - elapsed < CHUNK ? SOAK - elapsed : CHUNK))
    kids_ticks
    busy0=$(busy_ticks) gw0=$(proc_ticks "$GATEWAY") up0=$(proc_ticks "$UPSTREAM") kids0=$KIDS t0=$(date +%s%N)
    start_ms=$(((t0 - T0) / 1000000))
    timeout $((d + 30)) "${OTHERS_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${d}s" --timeout 5s -s bench/chat.lua \
        "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" -- bench "$KEY" >"$WORK/out" || STATUS=1
    t1=$(date +%s%N)
    end_ms=$(((t1 - T0) / 1000000))
    if ! alive "$GATEWAY"; then
        code=0; wait "$GATEWAY" || code=$?
        echo "error: the gateway exited with status $code during the soak, after ${elapsed}s; its last log lines:" >&2
        tail -20 "$WORK/gateway.log" >&2
        exit 1
    fi
    out=$(grep '^RESULT' "$WORK/out" || true)
    [[ -n $out ]] || { echo "error: wrk printed no RESULT:" >&2; cat "$WORK/out" >&2; exit 1; }
    gw=$(($(proc_ticks "$GATEWAY") - gw0))
    kids_ticks
    ours=$((gw + $(proc_ticks "$UPSTREAM") - up0 + KIDS - kids0))
    other=$((100 * ($(busy_ticks) - busy0 - ours) * 1000000000 / ((t1 - t0) * HZ * $(nproc))))
    requests=$(field requests "$out")
    errors=$(($(field non2xx "$out") + $(field socket_errors "$out")))
    ((errors == 0)) || STATUS=1
    rss=$(vm VmRSS "$GATEWAY") anon=$(vm RssAnon "$GATEWAY")
    cpu=$((gw * 1000000 / HZ / (requests + 1)))
    chunk=$((chunk + 1)) elapsed=$((elapsed + d))
    echo "$chunk $start_ms $end_ms $requests $out" >>"$WORK/chunks"
    row "$elapsed" "$requests" "$(field rps "$out")" "$(field p50_us "$out")" "$(field p99_us "$out")" "$errors" \
        "$rss" "$anon" "$cpu" "~$((other < 0 ? 0 : other))%"
    echo "RESULT chunk=$chunk t_s=$elapsed $(cut -d' ' -f2- <<<"$out") rss_kb=$rss rss_anon_kb=$anon gateway_cpu_us_per_req=$cpu" >>"$WORK/results"
done
echo "$((($(date +%s%N) - T0) / 1000000)) $(vm VmRSS "$GATEWAY") $(vm RssAnon "$GATEWAY")" >>"$WORK/rss"
kill "$SAMPLER" 2>/dev/null || true

echo
cat "$WORK/results"
# The summary: requests at each sample's time are interpolated within the wrk run it fell in.
python3 - "$WORK/rss" "$WORK/chunks" "$WARMUP" "$FLAT_KB" "$RSS_START" "$(vm VmHWM "$GATEWAY")" <<'PY'
import sys

rss_file, chunks_file, warm_s, flat_kb, rss_start, hwm = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
samples = [tuple(int(x) for x in line.split()) for line in open(rss_file) if len(line.split()) == 3
           and all(x.isdigit() for x in line.split())]
chunks = [line.split()[:4] for line in open(chunks_file)]
chunks = [(int(s), int(e), int(r)) for _, s, e, r in chunks]
total = sum(r for _, _, r in chunks)


def served_by(ms):
    done = 0
    for start, end, requests in chunks:
        if ms >= end:
            done += requests
        elif ms > start:
            done += requests * (ms - start) / (end - start)
    return done


warm_end = chunks[0][0] + warm_s * 1000  # the warm-up: the first WARMUP seconds of load
after = [(served_by(t), rss, anon) for t, rss, anon in samples if t >= warm_end]
if len(after) < 2:
    print("RESULT soak verdict=- (too few samples after the warm-up: run longer)")
    sys.exit(0)
warm_req, warm_rss, warm_anon = after[0]
last_req, last_rss, last_anon = after[-1]
served = max(last_req - warm_req, 1)


def slope(points):  # least squares, KB per request
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


fit = slope([(r, rss) for r, rss, _ in after]) * served
fit_anon = slope([(r, anon) for r, _, anon in after]) * served
growth, growth_anon = last_rss - warm_rss, last_anon - warm_anon
# The second half of the samples after warm-up: a leak keeps rising there, a cache or allocator arena
# that filled once during the first minutes does not.
late = after[len(after) // 2:]
late_fit = slope([(r, rss) for r, rss, _ in late]) * (late[-1][0] - late[0][0]) if len(late) >= 2 else 0.0
verdict = "grows" if growth > flat_kb and fit > flat_kb and late_fit > flat_kb / 2 else "flat"
per100k = lambda kb: kb / served * 100000
fields = {
    "seconds": chunks[-1][1] // 1000, "requests": total, "requests_after_warmup": int(served),
    "rss_start_kb": rss_start, "rss_warm_kb": warm_rss, "rss_max_kb": max(s[1] for s in samples),
    "rss_last_kb": last_rss, "rss_peak_hwm_kb": hwm,
    "growth_mb": f"{growth / 1024:.1f}", "growth_kb_per_100k": f"{per100k(growth):.1f}",
    "fit_growth_mb": f"{fit / 1024:.1f}", "fit_kb_per_100k": f"{per100k(fit):.1f}",
    "anon_warm_kb": warm_anon, "anon_last_kb": last_anon, "anon_growth_mb": f"{growth_anon / 1024:.1f}",
    "anon_fit_kb_per_100k": f"{per100k(fit_anon):.1f}", "late_half_growth_mb": f"{late_fit / 1024:.1f}",
    "samples": len(samples), "verdict": verdict,
}
print("RESULT soak " + " ".join(f"{k}={v}" for k, v in fields.items()))
print()
print(f"requests: {total} in {fields['seconds']} s ({total / max(fields['seconds'], 1):.0f}/s on average)")
print(f"gateway RSS: at start {rss_start} KB, after the warm-up ({warm_s:.0f} s) {warm_rss} KB, "
      f"max {fields['rss_max_kb']} KB, last {last_rss} KB; peak (VmHWM) {hwm} KB")
print(f"growth after warm-up: {growth / 1024:+.1f} MB over {served:.0f} requests = {per100k(growth):+.1f} KB per 100 000 "
      f"requests (least-squares line: {fit / 1024:+.1f} MB, {per100k(fit):+.1f} KB per 100 000)")
print(f"anonymous memory (RssAnon): {warm_anon} -> {last_anon} KB ({growth_anon / 1024:+.1f} MB; "
      f"line {per100k(fit_anon):+.1f} KB per 100 000 requests)")
print(f"second half of the run: {late_fit / 1024:+.1f} MB (least-squares line over its samples)")
print(f"verdict: {verdict} (grows = last - warm-up and the line both above {flat_kb} KB, and the second half "
      f"still above {flat_kb // 2} KB)")
PY
echo "full output: $OUT"
((STATUS == 0)) || echo "SOME REQUESTS FAILED: see the errors column above" >&2
exit $STATUS
