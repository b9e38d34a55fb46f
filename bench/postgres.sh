#!/usr/bin/env bash
# The PostgreSQL scenarios (issue 14): what a shared PostgreSQL costs against SQLite, with rate
# limits on, in one run. Three gateways setups in front of the same fast fake upstream, one after
# another, each on a fresh database:
#
#   sqlite     one gateway, SQLite (the embedded default)
#   pg-1       one gateway on PostgreSQL (limits, slots and holds in the database)
#   pg-2       two replicas on one PostgreSQL behind nginx (upstream block with keep-alive, as
#              docs/DEPLOYMENT.md recommends); wrk talks to nginx
#
# For each: non-streaming chat requests/s at 64 connections and latency at 1 connection (added =
# its p50 - the direct upstream's p50 measured in the same run), errors (a 429 counts: the limits
# are set never to refuse), and CPU per request of the gateway process(es) and of PostgreSQL.
# Every request carries the demo account's key; the config gives every account and every key
# requests_per_minute, tokens_per_minute and concurrent limits too high to refuse, so each request
# is admitted by the limiter (in memory with SQLite; in the database with PostgreSQL).
#
# Usage: bench/postgres.sh              (also run at the end of bench/run.sh with BENCH_POSTGRES=1)
# Environment: BENCH_DURATION (wrk seconds per run, default 10), BENCH_WARMUP (default 2),
#   BENCH_PIN=1 (pinning, below), BENCH_NO_BUILD=1, BENCH_GATEWAY=PATH (as in bench/run.sh),
#   BENCH_POSTGRES_URL=postgres://user:pass@127.0.0.1:port/db (a server to use instead of a
#     throw-away cluster; its user must be allowed to CREATE DATABASE; PostgreSQL's CPU is then not
#     measured), BENCH_PG_OPTIONS (server options of the throw-away cluster, default
#     "-c synchronous_commit=off": commits do not wait for their WAL flush, as SQLite's
#     synchronous=NORMAL in WAL mode does not wait for an fsync), BENCH_SCENARIOS (default
#     "sqlite pg-1 pg-2").
# Pinning (BENCH_PIN=1, 2 cores): every Switchyard process (the one gateway, or both replicas) runs
#   on CPU 1 (taskset -c 1); the fake upstream, wrk, PostgreSQL (the postmaster and its children,
#   re-pinned after start, so its backends inherit it) and the pg-2 balancer nginx on CPU 0.
#   BENCH_PG_CPU=gateway / BENCH_LB_CPU=gateway put PostgreSQL / nginx on CPU 1 instead. Without
#   BENCH_PIN every process shares both cores.
# Output: tables as bench/run.sh prints them, then a markdown table to paste into
# docs/BENCHMARKS.md; kept in bench/results/postgres-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
UPSTREAM_PORT=18111
GW_PORTS=(18112 18113)
LB_PORT=18114
BIN=.build/release
GATEWAY_BIN=${BENCH_GATEWAY:-$BIN/switchyard}
SCENARIOS=${BENCH_SCENARIOS:-sqlite pg-1 pg-2}
PG_OPTIONS=${BENCH_PG_OPTIONS:--c synchronous_commit=off}
WORK=$(mktemp -d)
TIMES=$WORK/times.txt
# alive, stop_pids, port_in_use, start, field, vm, proc_ticks, busy_ticks, children_ticks, ratio
source "$(dirname "$0")/lib.sh"
chmod 711 "$WORK"
mkdir -p bench/results
OUT=bench/results/postgres-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$OUT") 2>&1
. scripts/lib-postgres.sh

PIDS=()
# Stopped servers leave the list, so that the exit trap never signals a pid the system gave away.
forget_pids() {
    local keep=() pid gone
    for pid in "${PIDS[@]}"; do
        gone=0
        for g in "$@"; do [[ $pid == "$g" ]] && gone=1; done
        ((gone)) || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}
EXTERNAL_DBS=()
cleanup() {
    stop_pids "${PIDS[@]}"
    for db in "${EXTERNAL_DBS[@]}"; do
        psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    pg_throwaway_stop
    for log in "$WORK"/*.log; do [[ -e $log ]] && cp "$log" "${OUT%.txt}-$(basename "$log")"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ${BENCH_PIN:-0} == 1 ]]; then
    GATEWAY_CPU=(taskset -c 1) OTHERS_CPU=(taskset -c 0)
    PG_CPU_SET=$([[ ${BENCH_PG_CPU:-others} == gateway ]] && echo 1 || echo 0)
    LB_CPU=("${OTHERS_CPU[@]}")
    [[ ${BENCH_LB_CPU:-others} == gateway ]] && LB_CPU=("${GATEWAY_CPU[@]}")
else
    GATEWAY_CPU=() OTHERS_CPU=() LB_CPU=() PG_CPU_SET=
fi

sum_ticks() { local pid total=0; for pid in "$@"; do total=$((total + $(proc_ticks "$pid"))); done; echo "$total"; }
# PostgreSQL's processes: the postmaster and its children (backends come and go with connections,
# but the gateways' pools keep theirs open).
pg_pids() { [[ -n ${PG_PID:-} ]] && { echo "$PG_PID"; ps -o pid= --ppid "$PG_PID" | tr -d ' '; }; true; }

# Runs a command with its output in $WORK/out and sets GW_TICKS (the Switchyard processes' CPU time
# meanwhile), PG_TICKS (PostgreSQL's, or - when it is not ours to see) and OTHER_PCT (the share of
# both cores used by processes that are not part of the benchmark).
measured() {
    local busy0 gw0 pg0 lb0 up0 kids0 t0 t1 ours pgs
    pgs=$(pg_pids)
    busy0=$(busy_ticks) gw0=$(sum_ticks "${SUBJECTS[@]}") pg0=$(sum_ticks $pgs) lb0=$(sum_ticks ${NGINX:-})
    builtin times >"$TIMES"
    up0=$(proc_ticks "$UPSTREAM") kids0=$(children_ticks)
    t0=$(date +%s%N)
    "$@" >"$WORK/out" || STATUS=1
    t1=$(date +%s%N)
    GW_TICKS=$(($(sum_ticks "${SUBJECTS[@]}") - gw0))
    PG_TICKS=$(($(sum_ticks $(pg_pids)) - pg0))
    builtin times >"$TIMES"
    ours=$((GW_TICKS + PG_TICKS + $(sum_ticks ${NGINX:-}) - lb0 + $(proc_ticks "$UPSTREAM") - up0 + $(children_ticks) - kids0))
    OTHER_PCT=$((100 * ($(busy_ticks) - busy0 - ours) * 1000000000 / ((t1 - t0) * HZ * $(nproc))))
    ((OTHER_PCT >= 0)) || OTHER_PCT=0
    [[ -n ${PG_PID:-} ]] || PG_TICKS=-
    local pid
    for pid in "$UPSTREAM" "${SUBJECTS[@]}" ${NGINX:-}; do
        if ! alive "$pid"; then
            echo "error: a server (pid $pid) exited during: $*; the logs are kept next to $OUT" >&2
            exit 1
        fi
    done
}

# --- tools and binaries -------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if [[ $SCENARIOS == *pg-2* ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    echo "installing nginx-light (Debian package), the balancer of the two-replica scenario"
    apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    echo "building release binaries"
    timeout 1800 swift build -c release --product switchyard
    timeout 1800 swift build -c release --product switchyard-fake-upstream
fi
for port in $UPSTREAM_PORT "${GW_PORTS[@]}" $LB_PORT; do
    if port_in_use "$port"; then echo "error: port $port is already in use on 127.0.0.1" >&2; exit 1; fi
done

# --- the database server ------------------------------------------------------------------------
if [[ $SCENARIOS == *pg-* ]]; then
    if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then
        command -v psql >/dev/null || { echo "error: BENCH_POSTGRES_URL needs psql (postgresql-client)" >&2; exit 1; }
        PG_NOTE="given by BENCH_POSTGRES_URL (its CPU is not measured)"
    else
        pg_throwaway_start $PG_OPTIONS
        PG_NOTE="throw-away cluster $("$PG_BIN/postgres" --version | sed 's/.*) //'), options: $PG_OPTIONS"
        if [[ -n $PG_CPU_SET ]]; then
            for pid in $(pg_pids); do taskset -a -p -c "$PG_CPU_SET" "$pid" >/dev/null; done
        fi
    fi
fi
# A fresh database per scenario: sets DATABASE to its URL.
new_database() {
    local name=switchyard_bench_$1_$$
    name=${name//-/_}
    if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then
        psql "$BENCH_POSTGRES_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $name" >/dev/null
        EXTERNAL_DBS+=("$name")
        DATABASE=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
            "$BENCH_POSTGRES_URL" "$name")
    else
        DATABASE=$(pg_createdb "$name")
    fi
}
db_connections() { # URL: connections to that database now, or - without psql
    command -v psql >/dev/null || { echo -; return; }
    psql "$1" -Atqc "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null || echo -
}

echo "== machine"
echo "cpus: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
echo "build: gateway $GATEWAY_BIN; commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + uncommitted changes')"
if [[ ${BENCH_PIN:-0} == 1 ]]; then
    echo "pinning: Switchyard (the gateway, or both replicas) on CPU 1; the fake upstream and wrk on CPU 0;" \
        "PostgreSQL on CPU ${PG_CPU_SET:-?}; the pg-2 balancer (nginx) on CPU $([[ ${BENCH_LB_CPU:-others} == gateway ]] && echo 1 || echo 0)"
else
    echo "pinning: none (all processes share both cores)"
fi
[[ $SCENARIOS == *pg-* ]] && echo "postgresql: $PG_NOTE"
echo "$BENCH_LIMITS_LINE"
echo "load average before start: $(cut -d" " -f1-3 /proc/loadavg)"

start upstream "fake upstream listening" "${OTHERS_CPU[@]}" "$BIN/switchyard-fake-upstream" --port $UPSTREAM_PORT
UPSTREAM=$STARTED

load() {
    local c=$1 seconds=$2 port=$3 model=$4; shift 4
    timeout $((seconds + 30)) "${OTHERS_CPU[@]}" wrk -t1 -c"$c" -d"${seconds}s" --timeout 5s -s bench/chat.lua \
        "http://127.0.0.1:$port/v1/chat/completions" -- "$model" "$@"
}
STATUS=0
RESULTS=$WORK/results

# The upstream alone, for the added latency.
echo "== direct (the fake upstream alone), ${DURATION}s per run after ${WARMUP}s warm-up"
SUBJECTS=()
for c in 1 64; do
    load "$c" "$WARMUP" $UPSTREAM_PORT bench-upstream >/dev/null
    measured load "$c" "$DURATION" $UPSTREAM_PORT bench-upstream
    out="$(grep '^RESULT' "$WORK/out") other_cpu_pct=$OTHER_PCT"
    echo "c=$c direct: $out"
    echo "direct $c $out" >>"$RESULTS"
done

gateway_config() { # DATABASE: the config every gateway of a scenario shares (its port from BENCH_PORT)
    cat <<EOF
server:
  host: 127.0.0.1
  port: \${BENCH_PORT}
log_level: error
database: "$1"
admin_key: bench-admin-$RANDOM$RANDOM
providers:
  fake: {kind: openai, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", max_connections: 256}
models:
  bench: {deployments: [{provider: fake, model: bench-upstream}]}
$BENCH_LIMITS_YAML
EOF
}

lb_config() {
    cat <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    upstream switchyard {
        server 127.0.0.1:${GW_PORTS[0]};
        server 127.0.0.1:${GW_PORTS[1]};
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$LB_PORT;
        location / {
            proxy_pass http://switchyard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_next_upstream error timeout;
        }
    }
}
NGINX
}

for scenario in $SCENARIOS; do
    case $scenario in
        sqlite) replicas=1 DATABASE=sqlite:$WORK/bench-$scenario.sqlite ;;
        pg-1) replicas=1; new_database "$scenario" ;;
        pg-2) replicas=2; new_database "$scenario" ;;
        *) echo "error: unknown scenario $scenario (sqlite, pg-1, pg-2)" >&2; exit 2 ;;
    esac
    echo "== $scenario: $replicas gateway process(es) on ${DATABASE%%:*}, ${DURATION}s per run after ${WARMUP}s warm-up"
    gateway_config "$DATABASE" >"$WORK/$scenario.yaml"
    SUBJECTS=() NGINX=
    for ((r = 0; r < replicas; r++)); do
        # One after the other: the first migrates the database and makes the demo account.
        start "$scenario-gateway$((r + 1))" "switchyard listening" \
            env BENCH_PORT="${GW_PORTS[r]}" "${GATEWAY_CPU[@]}" "$GATEWAY_BIN" serve --config "$WORK/$scenario.yaml"
        SUBJECTS+=("$STARTED")
    done
    KEY=$(grep -o 'sk-sy-[A-Za-z0-9]*' "$WORK/$scenario-gateway1.log" | head -1 || true)
    [[ -n $KEY ]] || { echo "error: $scenario: the gateway printed no demo key" >&2; exit 1; }
    port=${GW_PORTS[0]}
    if ((replicas == 2)); then
        lb_config >"$WORK/nginx.conf"
        "${LB_CPU[@]}" "$NGINX_BIN" -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
        NGINX=$!
        PIDS+=("$NGINX")
        for ((i = 0; i < 100; i++)); do port_in_use $LB_PORT && break; sleep 0.1; done
        port_in_use $LB_PORT || { echo "error: nginx did not start:" >&2; cat "$WORK/nginx.log" "$WORK/nginx-error.log" >&2; exit 1; }
        port=$LB_PORT
    fi
    for c in 1 64; do
        load "$c" "$WARMUP" "$port" bench "$KEY" >/dev/null
        measured load "$c" "$DURATION" "$port" bench "$KEY"
        out="$(grep '^RESULT' "$WORK/out") other_cpu_pct=$OTHER_PCT"
        requests=$(field requests "$out")
        out+=" gateway_cpu_us_per_req=$((GW_TICKS * 1000000 / HZ / (requests + 1)))"
        if [[ $PG_TICKS == - ]]; then out+=" pg_cpu_us_per_req=-"; else out+=" pg_cpu_us_per_req=$((PG_TICKS * 1000000 / HZ / (requests + 1)))"; fi
        echo "c=$c $scenario: $out"
        echo "$scenario $c $out" >>"$RESULTS"
        [[ $(field non2xx "$out") == 0 && $(field socket_errors "$out") == 0 ]] || STATUS=1
    done
    [[ $scenario == sqlite ]] || echo "$scenario: PostgreSQL connections to its database: $(db_connections "$DATABASE")"
    stop_pids "${SUBJECTS[@]}" ${NGINX:-}
    forget_pids "${SUBJECTS[@]}" ${NGINX:-}
    NGINX=
done

# --- summary ---------------------------------------------------------------------------------------
get() { grep "^$1 $2 " "$RESULTS" | cut -d' ' -f3- || true; }
d1=$(get direct 1)
echo
echo "== PostgreSQL scenarios: summary (latency in microseconds; added = scenario p50 - direct p50 at 1"
echo "   connection; errors = non-2xx (429 included) + socket errors at 1 / 64; cpu per request at 64"
echo "   connections, gateway = every Switchyard process of the scenario; other cpu = % of both cores used"
echo "   by unrelated processes during the 1 / 64 runs)"
row() { printf "%8s | %7s %8s %8s | %9s %8s %8s | %7s | %7s %7s | %s\n" "$@"; }
row scenario "c1 p50" "added50" "c1 p99" "c64 req/s" "c64 p50" "c64 p99" errors "gw cpu" "pg cpu" "other cpu"
row "" "" "" "" "" "" "" "" "us/req" "us/req" ""
for scenario in direct $SCENARIOS; do
    a=$(get "$scenario" 1) b=$(get "$scenario" 64)
    [[ -n $a && -n $b ]] || continue
    added=$(($(field p50_us "$a") - $(field p50_us "$d1")))
    row "$scenario" "$(field p50_us "$a")" "$([[ $scenario == direct ]] && echo - || echo "$added")" "$(field p99_us "$a")" \
        "$(field rps "$b")" "$(field p50_us "$b")" "$(field p99_us "$b")" \
        "$(($(field non2xx "$a") + $(field socket_errors "$a")))/$(($(field non2xx "$b") + $(field socket_errors "$b")))" \
        "$(field gateway_cpu_us_per_req "$b" | sed 's/^$/-/')" \
        "$([[ $scenario == sqlite ]] && echo - || field pg_cpu_us_per_req "$b" | sed 's/^$/-/')" \
        "$(field other_cpu_pct "$a")% / $(field other_cpu_pct "$b")%"
done

times() { local r; r=$(ratio "$1" "$2"); [[ $r == - ]] && echo — || echo "$r×"; }
describe() {
    case $1 in
        sqlite) echo "SQLite, one gateway" ;;
        pg-1) echo "PostgreSQL, one replica" ;;
        pg-2) echo "PostgreSQL, two replicas behind nginx" ;;
    esac
}
s64=0 s1=0   # SQLite's figures, the ratios' base (none when BENCH_SCENARIOS leaves it out: ratios "-")
if [[ -n $(get sqlite 1) && -n $(get sqlite 64) ]]; then
    s64=$(field rps "$(get sqlite 64)")
    s1=$(($(field p50_us "$(get sqlite 1)") - $(field p50_us "$d1")))
fi
echo
echo "== markdown for docs/BENCHMARKS.md ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)," \
    "$([[ ${BENCH_PIN:-0} == 1 ]] && echo pinned || echo unpinned), ${DURATION} s runs)"
echo
echo "| setup | req/s at 64 conn | vs SQLite | added p50 at 1 conn | vs SQLite | p99 at 1 conn | gateway CPU / req at 64 | PostgreSQL CPU / req at 64 | errors | other CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for scenario in $SCENARIOS; do
    a=$(get "$scenario" 1) b=$(get "$scenario" 64)
    [[ -n $a && -n $b ]] || continue
    added=$(($(field p50_us "$a") - $(field p50_us "$d1")))
    pg=$(field pg_cpu_us_per_req "$b")
    echo "| $(describe "$scenario") | $(field rps "$b") | $(times "$(field rps "$b")" "$s64") | $added µs |" \
        "$(times "$added" "$s1") | $(field p99_us "$a") µs | $(field gateway_cpu_us_per_req "$b") µs |" \
        "$([[ $scenario == sqlite || $pg == - ]] && echo — || echo "$pg µs") |" \
        "$(($(field non2xx "$a") + $(field socket_errors "$a") + $(field non2xx "$b") + $(field socket_errors "$b"))) |" \
        "$(field other_cpu_pct "$a")–$(field other_cpu_pct "$b") % |"
done
echo
echo "direct upstream: p50 $(field p50_us "$d1") µs at 1 connection, $(field rps "$(get direct 64)") req/s at 64"
echo "full output: $OUT"
((STATUS == 0)) || echo "SOME REQUESTS FAILED (a 429 is a limit refusing, which these limits never should): see the lines above" >&2
exit $STATUS
