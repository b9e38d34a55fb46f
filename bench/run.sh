#!/usr/bin/env bash
# What the gateway adds over a direct call to the same fast local upstream, next to nginx (`proxy_pass`
# with keep-alive, unbuffered: the floor any proxy is held to) in the same run: non-streaming latency
# and throughput at 1/16/64 concurrent, time to first token and completeness of 256 concurrent
# streams, 256 streams in a closed loop (streams/s, CPU per relayed event), CPU per request, and the
# gateway's memory. All traffic stays on 127.0.0.1. nginx runs on
# the gateway's core (with BENCH_PIN=1), as a single process. So does the stack's floor
# (switchyard-bench-floor: a bare Hummingbird 2 + AsyncHTTPClient relay with none of the gateway's
# own work), which splits what the gateway costs into the stack's share and its own.
# See docs/BENCHMARKS.md for the figures.
#
# Usage: bench/run.sh
# Environment: BENCH_DURATION (wrk seconds per run, default 10), BENCH_WARMUP (default 2),
#   BENCH_PIN=1 (gateway on CPU 1, everything else on CPU 0), BENCH_NO_BUILD=1 (use the binaries as built),
#   BENCH_GATEWAY=PATH (another switchyard binary, e.g. an older build to compare with),
#   BENCH_POSTGRES=1 (then the PostgreSQL scenarios, bench/postgres.sh: SQLite, PostgreSQL with one
#   replica and with two behind nginx, limits on; also runnable alone).
#   Also opt-in, run after the tables in this order, each a standalone script with its own servers:
#   BENCH_DISCONNECT=1 (bench/disconnect.py: client disconnect -> upstream connection closed, vs nginx),
#   BENCH_OPEN_STREAMS=N (bench/open_streams.py: N concurrent open streams, memory per stream, vs nginx;
#   1 means 10000), BENCH_SOAK=SECONDS (bench/soak.sh: wrk at 64 connections for that long, RSS flat
#   or growing; 1 means 600).
# The full output is also kept in bench/results/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
GATEWAY_PORT=18080
UPSTREAM_PORT=18081
NGINX_PORT=18082
FLOOR_PORT=18083
STREAMS=256
BIN=.build/release
GATEWAY_BIN=${BENCH_GATEWAY:-$BIN/switchyard}
WORK=$(mktemp -d)
mkdir -p bench/results
OUT=bench/results/run-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$OUT") 2>&1

PIDS=()
# stop_pids, port_in_use, start, field, vm, proc_ticks, busy_ticks, children_ticks, ratio
source "$(dirname "$0")/lib.sh"
stop_servers() {
    stop_pids "${PIDS[@]}"
    PIDS=()
}
cleanup() {
    stop_servers
    # Server logs are kept next to the output: they hold the reason if a server failed.
    for log in "$WORK"/*.log; do [[ -e $log ]] && cp "$log" "${OUT%.txt}-$(basename "$log")"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ${BENCH_PIN:-0} == 1 ]]; then
    # The gateway gets a core of its own so the load generator and the upstream do not steal its time.
    GATEWAY_CPU=(taskset -c 1) OTHERS_CPU=(taskset -c 0)
else
    GATEWAY_CPU=() OTHERS_CPU=()
fi


# Runs a command with its output in $WORK/out and sets GATEWAY_TICKS (the gateway's CPU time meanwhile)
# and OTHER_PCT: the share of both cores used by processes that are not part of the benchmark. The
# machine is shared, so a figure taken while something else was busy is flagged rather than trusted.
measured() {
    local busy0 gw0 up0 kids0 t0 t1 ours
    local subject=${MEASURED_PID:-$GATEWAY}
    builtin times >"$TIMES"
    busy0=$(busy_ticks) gw0=$(proc_ticks "$subject") up0=$(proc_ticks "$UPSTREAM") kids0=$(children_ticks)
    t0=$(date +%s%N)
    "$@" >"$WORK/out" || STATUS=1
    t1=$(date +%s%N)
    GATEWAY_TICKS=$(($(proc_ticks "$subject") - gw0))
    builtin times >"$TIMES"
    ours=$((GATEWAY_TICKS + $(proc_ticks "$UPSTREAM") - up0 + $(children_ticks) - kids0))
    OTHER_PCT=$((100 * ($(busy_ticks) - busy0 - ours) * 1000000000 / ((t1 - t0) * HZ * $(nproc))))
    ((OTHER_PCT >= 0)) || OTHER_PCT=0
    check_alive "$@"
}

# A server that died under load is the finding: say how it ended and stop, rather than measure a corpse.
check_alive() {
    local name pid code state
    for name in gateway upstream nginx floor; do
        case $name in gateway) pid=$GATEWAY ;; upstream) pid=$UPSTREAM ;; nginx) pid=${NGINX:-} ;; floor) pid=${FLOOR:-} ;; esac
        [[ -n $pid ]] || continue
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
        [[ -n $state && $state != Z ]] && continue
        code=0; wait "$pid" || code=$?
        echo "error: the $name exited with status $code$( ((code > 128)) && echo " (signal $((code - 128)))") during: ${*:-the run}" >&2
        echo "its last log lines:" >&2
        tail -20 "$WORK/$name.log" >&2
        exit 1
    done
}

# --- tools and binaries -------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    echo "installing nginx-light (Debian package), the reference proxy"
    apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    echo "building release binaries"
    timeout 1800 swift build -c release --product switchyard
    timeout 1800 swift build -c release --product switchyard-fake-upstream
    timeout 1800 swift build -c release --product switchyard-bench-floor
fi
for port in $GATEWAY_PORT $UPSTREAM_PORT $NGINX_PORT $FLOOR_PORT; do
    if port_in_use "$port"; then echo "error: port $port is already in use on 127.0.0.1" >&2; exit 1; fi
done

cat >"$WORK/gateway.yaml" <<EOF
server: {host: 127.0.0.1, port: $GATEWAY_PORT}
log_level: error
database: sqlite:$WORK/bench.sqlite
admin_key: bench-admin-$RANDOM$RANDOM
providers:
  fake: {kind: openai, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", max_connections: $STREAMS}
models:
  bench: {deployments: [{provider: fake, model: bench-upstream}]}
$BENCH_LIMITS_YAML
EOF

cat >"$WORK/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream fake { server 127.0.0.1:$UPSTREAM_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
NGINX

echo "== machine"
echo "cpus: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
echo "swift: $(swift --version 2>&1 | head -1)"
if [[ -n ${BENCH_GATEWAY:-} ]]; then
    echo "build: gateway $GATEWAY_BIN (given by BENCH_GATEWAY); upstream from commit $(git rev-parse --short HEAD)"
else
    echo "build: release; commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + uncommitted changes')"
fi
echo "pinning: $([[ ${BENCH_PIN:-0} == 1 ]] && echo 'gateway on CPU 1; upstream, wrk and the stream client on CPU 0' || echo 'none (all processes share both cores)')"
echo "load average before start: $(cut -d" " -f1-3 /proc/loadavg)"

start upstream "fake upstream listening" "${OTHERS_CPU[@]}" "$BIN/switchyard-fake-upstream" --port $UPSTREAM_PORT
UPSTREAM=$STARTED
start gateway "switchyard listening" "${GATEWAY_CPU[@]}" "$GATEWAY_BIN" serve --config "$WORK/gateway.yaml"
GATEWAY=$STARTED
start floor "Server started and listening" "${GATEWAY_CPU[@]}" "$BIN/switchyard-bench-floor" --port $FLOOR_PORT \
    --upstream "http://127.0.0.1:$UPSTREAM_PORT" --max-connections $STREAMS
FLOOR=$STARTED
"${GATEWAY_CPU[@]}" "$NGINX_BIN" -p "$WORK" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
NGINX=$!
PIDS+=("$NGINX")
for ((i = 0; i < 100; i++)); do port_in_use $NGINX_PORT && break; sleep 0.1; done
port_in_use $NGINX_PORT || { echo "error: nginx did not start:" >&2; cat "$WORK/nginx.log" "$WORK/nginx-error.log" >&2; exit 1; }
echo "nginx: $("$NGINX_BIN" -v 2>&1)"
# A fresh database gets a demo account (balance 10.00) and prints its key once; the model has no price,
# so requests are free but still authenticated, held and settled like any other.
KEY=$(grep -o 'sk-sy-[A-Za-z0-9]*' "$WORK/gateway.log" | head -1 || true)
KEY_ARGS=()
if [[ -n $KEY ]]; then
    KEY_ARGS=(--key "$KEY")
    echo "auth: the demo account's key (authentication, hold and settlement are in the path)"
    echo "$BENCH_LIMITS_LINE"
else
    echo "auth: none (this build printed no key)"
fi
RSS_START=$(vm VmRSS "$GATEWAY")
STATUS=0

# --- 256 concurrent streams (first, so the gateway's memory is measured from a fresh process) ------
echo "== $STREAMS concurrent streams (64 tokens, 20 ms apart)"
streams() {
    local target=$1 port=$2 model=$3; shift 3
    # A few short streams first so one-time setup (first connections, lazy caches) is not counted per stream.
    timeout 30 "${OTHERS_CPU[@]}" python3 bench/streams.py --port "$port" --model "$model" "${KEY_ARGS[@]}" \
        --streams 8 --tokens 4 --delay-ms 1 >/dev/null
    sleep 0.5
    measured timeout 90 "${OTHERS_CPU[@]}" python3 bench/streams.py --port "$port" --model "$model" "${KEY_ARGS[@]}" --streams $STREAMS "$@"
    echo "$target: $(cat "$WORK/out") other_cpu_pct=$OTHER_PCT"
    echo "$target $(grep '^RESULT' "$WORK/out") other_cpu_pct=$OTHER_PCT" >>"$WORK/streams"
}
streams direct $UPSTREAM_PORT bench-upstream
MEASURED_PID=$NGINX streams nginx $NGINX_PORT bench-upstream
MEASURED_PID=$FLOOR streams floor $FLOOR_PORT bench-upstream
streams gateway $GATEWAY_PORT bench --rss-pid "$GATEWAY"

# The port, model and CPU-counted process (subject) of one of the four targets.
target_of() {
    case $1 in
        direct) port=$UPSTREAM_PORT model=bench-upstream subject=$GATEWAY ;;
        nginx) port=$NGINX_PORT model=bench-upstream subject=$NGINX ;;
        floor) port=$FLOOR_PORT model=bench-upstream subject=$FLOOR ;;
        gateway) port=$GATEWAY_PORT model=bench subject=$GATEWAY ;;
    esac
}
# run_target TARGET LABEL FILE KEYPREFIX LOADER...: warms up, then measures `LOADER... SECONDS PORT
# MODEL`; prints "LABEL TARGET: RESULT…" (with the subject's CPU per request) and appends
# "KEYPREFIXTARGET RESULT…" to $WORK/FILE.
run_target() {
    local target=$1 label=$2 file=$3 key=$4 out; shift 4
    target_of "$target"
    "$@" "$WARMUP" $port $model >/dev/null
    MEASURED_PID=$subject measured "$@" "$DURATION" $port $model
    out="$(grep '^RESULT' "$WORK/out") other_cpu_pct=$OTHER_PCT"
    [[ $target == direct ]] || out+=" gateway_cpu_us_per_req=$((GATEWAY_TICKS * 1000000 / HZ / ($(field requests "$out") + 1)))"
    echo "$label $target: $out"
    echo "$key$target $out" >>"$WORK/$file"
    [[ $(field non2xx "$out") == 0 && $(field socket_errors "$out") == 0 ]] || STATUS=1
}

# --- non-streaming latency and throughput ------------------------------------------------------
echo "== non-streaming, ${DURATION}s per run after ${WARMUP}s warm-up"
load() {
    local c=$1 seconds=$2 port=$3 model=$4
    timeout $((seconds + 30)) "${OTHERS_CPU[@]}" wrk -t1 -c"$c" -d"${seconds}s" --timeout 5s -s bench/chat.lua \
        "http://127.0.0.1:$port/v1/chat/completions" -- "$model" $KEY
}
for c in 1 16 64; do
    for target in direct nginx floor gateway; do run_target $target "c=$c" wrk "$c " load "$c"; done
done

# --- streams in a closed loop: streams/s and CPU per relayed event ----------------------------------
echo "== $STREAMS streams in a closed loop (wrk, bench/stream.lua: 20 tokens 5 ms apart), ${DURATION}s per run"
sload() {
    local seconds=$1 port=$2 model=$3
    timeout $((seconds + 30)) "${OTHERS_CPU[@]}" wrk -t1 -c$STREAMS -d"${seconds}s" --timeout 10s -s bench/stream.lua \
        "http://127.0.0.1:$port/v1/chat/completions" -- "$model" $KEY
}
for target in direct nginx floor gateway; do run_target $target loop loop "" sload; done

check_alive
RSS_END=$(vm VmRSS "$GATEWAY" || echo -)
HWM=$(vm VmHWM "$GATEWAY" || echo -)
NGINX_HWM=$(vm VmHWM "$NGINX" || echo -)
FLOOR_HWM=$(vm VmHWM "$FLOOR" || echo -)

# --- summary ---------------------------------------------------------------------------------------
echo
echo "== summary (latency in microseconds; added = gateway - direct; errors = non-2xx + socket errors;"
echo "   other cpu = % of both cores used by unrelated processes during the direct / gateway run)"
row() { printf "%5s | %8s %8s %8s | %8s %8s %8s | %8s %8s | %6s | %7s | %s\n" "$@"; }
row conc direct50 gw50 added50 direct99 gw99 added99 direct/s gw/s errors "gw cpu" "other cpu"
row "" "" "" "" "" "" "" "" "" "" "us/req" ""
while read -r c _ d; do
    read -r _ _ g < <(grep "^$c gateway " "$WORK/wrk")
    row "$c" "$(field p50_us "$d")" "$(field p50_us "$g")" $(($(field p50_us "$g") - $(field p50_us "$d"))) \
        "$(field p99_us "$d")" "$(field p99_us "$g")" $(($(field p99_us "$g") - $(field p99_us "$d"))) \
        "$(field rps "$d")" "$(field rps "$g")" \
        "$(($(field non2xx "$d") + $(field socket_errors "$d")))/$(($(field non2xx "$g") + $(field socket_errors "$g")))" \
        "$(field gateway_cpu_us_per_req "$g")" "$(field other_cpu_pct "$d")% / $(field other_cpu_pct "$g")%"
done < <(grep ' direct ' "$WORK/wrk")
echo
printf "%8s | %8s %8s %8s | %10s | %9s | %s\n" streams ttft50ms ttft99ms ttftmax complete stream50ms "other cpu"
while read -r target line; do
    printf "%8s | %8s %8s %8s | %10s | %9s | %s\n" "$target" "$(field ttft_p50_ms "$line")" "$(field ttft_p99_ms "$line")" \
        "$(field ttft_max_ms "$line")" "$(field complete "$line")/$(field streams "$line")" \
        "$(field stream_p50_ms "$line")" "$(field other_cpu_pct "$line")%"
done <"$WORK/streams"
g=$(grep '^gateway ' "$WORK/streams")
echo
echo "gateway RSS: after start ${RSS_START} KB, before streams $(field rss_before_kb "$g") KB," \
    "peak with $STREAMS streams open $(field rss_peak_kb "$g") KB -> $(field kb_per_stream "$g") KB per open stream"
echo "gateway RSS 0.5 s after the streams closed $(field rss_after_kb "$g") KB"
echo "gateway RSS at end ${RSS_END} KB; peak RSS (VmHWM) ${HWM} KB"
echo "nginx peak RSS (VmHWM) ${NGINX_HWM} KB; the floor's ${FLOOR_HWM} KB"
echo
echo "== against nginx (ratios in the same run; the targets of docs/BENCHMARKS.md)"
printf "%5s | %9s %9s %7s | %9s %9s %7s | %11s %11s %7s\n" conc "nginx/s" "gw/s" "gw/ngx" \
    "ngx add50" "gw add50" "gw/ngx" "ngx us/req" "gw us/req" "gw/ngx"
while read -r c _ d; do
    read -r _ _ n < <(grep "^$c nginx " "$WORK/wrk")
    read -r _ _ g < <(grep "^$c gateway " "$WORK/wrk")
    na=$(($(field p50_us "$n") - $(field p50_us "$d"))) ga=$(($(field p50_us "$g") - $(field p50_us "$d")))
    printf "%5s | %9s %9s %7s | %9s %9s %7s | %11s %11s %7s\n" "$c" "$(field rps "$n")" "$(field rps "$g")" \
        "$(ratio "$(field rps "$g")" "$(field rps "$n")")" "$na" "$ga" "$(ratio "$ga" "$na")" \
        "$(field gateway_cpu_us_per_req "$n")" "$(field gateway_cpu_us_per_req "$g")" \
        "$(ratio "$(field gateway_cpu_us_per_req "$g")" "$(field gateway_cpu_us_per_req "$n")")"
done < <(grep ' direct ' "$WORK/wrk")
n=$(grep '^nginx ' "$WORK/streams") gs=$(grep '^gateway ' "$WORK/streams")
echo "streams: ttft p50 nginx $(field ttft_p50_ms "$n") ms, gateway $(field ttft_p50_ms "$gs") ms" \
    "($(ratio "$(field ttft_p50_ms "$gs")" "$(field ttft_p50_ms "$n")")x); complete nginx $(field complete "$n"), gateway $(field complete "$gs")"
echo
echo "== the stack's floor (switchyard-bench-floor: Hummingbird 2 + AsyncHTTPClient, none of the gateway's own work)"
printf "%5s | %9s %7s %8s | %9s %7s %8s | %11s %7s %8s\n" conc "floor/s" "fl/ngx" "gw/floor" \
    "fl add50" "fl/ngx" "gw/floor" "fl us/req" "fl/ngx" "gw/floor"
while read -r c _ d; do
    read -r _ _ n < <(grep "^$c nginx " "$WORK/wrk")
    read -r _ _ f < <(grep "^$c floor " "$WORK/wrk")
    read -r _ _ g < <(grep "^$c gateway " "$WORK/wrk")
    na=$(($(field p50_us "$n") - $(field p50_us "$d"))) fa=$(($(field p50_us "$f") - $(field p50_us "$d")))
    ga=$(($(field p50_us "$g") - $(field p50_us "$d")))
    fc=$(field gateway_cpu_us_per_req "$f")
    printf "%5s | %9s %7s %8s | %9s %7s %8s | %11s %7s %8s\n" "$c" "$(field rps "$f")" \
        "$(ratio "$(field rps "$f")" "$(field rps "$n")")" "$(ratio "$(field rps "$g")" "$(field rps "$f")")" \
        "$fa" "$(ratio "$fa" "$na")" "$(ratio "$ga" "$fa")" \
        "$fc" "$(ratio "$fc" "$(field gateway_cpu_us_per_req "$n")")" "$(ratio "$(field gateway_cpu_us_per_req "$g")" "$fc")"
done < <(grep ' direct ' "$WORK/wrk")
fs=$(grep '^floor ' "$WORK/streams")
echo "streams: ttft p50 floor $(field ttft_p50_ms "$fs") ms, complete $(field complete "$fs")"
echo
echo "== $STREAMS streams in a closed loop (20 tokens 5 ms apart; a client sees 23 events per stream)"
printf "%8s | %9s %7s | %9s | %11s %11s | %s\n" target "streams/s" "/nginx" "p50 ms" "cpu us/strm" "us/event" "other cpu"
nl=$(grep '^nginx ' "$WORK/loop")
while read -r target line; do
    cpu=$(field gateway_cpu_us_per_req "$line")
    printf "%8s | %9s %7s | %9s | %11s %11s | %s\n" "$target" "$(field rps "$line")" \
        "$(ratio "$(field rps "$line")" "$(field rps "$nl")")" "$(( $(field p50_us "$line") / 1000 ))" \
        "${cpu:--}" "$([[ -n $cpu ]] && awk -v c="$cpu" 'BEGIN { printf "%.1f", c / 23 }' || echo -)" \
        "$(field other_cpu_pct "$line")%"
done <"$WORK/loop"
echo "full output: $OUT"
((STATUS == 0)) || echo "SOME REQUESTS OR STREAMS FAILED: see the lines above" >&2

# The opt-in scenarios: the servers above are done with; each script starts its own on other ports.
stop_servers
if [[ ${BENCH_POSTGRES:-0} == 1 ]]; then
    echo
    echo "== PostgreSQL scenarios (bench/postgres.sh)"
    BENCH_NO_BUILD=1 BENCH_GATEWAY=$GATEWAY_BIN bench/postgres.sh || STATUS=1
fi
if [[ ${BENCH_DISCONNECT:-0} == 1 ]]; then
    echo
    echo "== disconnect -> upstream connection closed (bench/disconnect.py)"
    BENCH_GATEWAY=$GATEWAY_BIN timeout 1800 python3 bench/disconnect.py || STATUS=1
fi
if [[ ${BENCH_OPEN_STREAMS:-0} != 0 ]]; then
    n=$BENCH_OPEN_STREAMS
    [[ $n == 1 ]] && n=10000
    echo
    echo "== $n concurrent open streams (bench/open_streams.py)"
    BENCH_GATEWAY=$GATEWAY_BIN timeout 1800 python3 bench/open_streams.py --streams "$n" || STATUS=1
fi
if [[ ${BENCH_SOAK:-0} != 0 ]]; then
    echo
    echo "== soak (bench/soak.sh)"
    BENCH_NO_BUILD=1 BENCH_GATEWAY=$GATEWAY_BIN bench/soak.sh "$BENCH_SOAK" || STATUS=1
fi
exit $STATUS
