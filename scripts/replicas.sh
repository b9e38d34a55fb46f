#!/usr/bin/env bash
# Two Switchyard replicas on one PostgreSQL behind nginx, on this machine, without containers
# (docs/DEPLOYMENT.md). Everything listens on 127.0.0.1 only and lives in a temp dir that is removed
# on exit.
#
#   scripts/replicas.sh            start it all, print how to try it, run until Ctrl-C
#   scripts/replicas.sh --check    start it all, send requests through nginx, restart replica 1 while
#                                  requests keep flowing (every one must succeed, every one must be
#                                  on the ledger once), stop; exits non-zero on any failure
#
# Environment:
#   SWITCHYARD_DATABASE=postgres://user:pass@host:port/db   the database both replicas share; unset:
#                       a throw-away PostgreSQL cluster in the temp dir (as .ci/run makes CI's)
#   SWITCHYARD_BIN      the gateway binary (default: the newer of .build/release/switchyard and
#                       .build/debug/switchyard)
#   SWITCHYARD_ADMIN_KEY  the admin key both replicas use (default: a random one, printed)
#   REPLICAS_PORT       nginx's port (default 8080); the replicas take the next two (8081, 8082)
#
# Both replicas run one config file, written from ./switchyard.yaml (its models, prices and limits)
# with `database:` set to the shared database and a `replicas:` section added; its `server:` reads
# SWITCHYARD_PORT, so each replica gets its own port from the environment. nginx (Debian's
# nginx-light, installed if missing) runs from a private nginx.conf with its pid, logs and temp
# files in the temp dir. Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=run
case ${1:-} in
    "") ;;
    --check) MODE=check ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

LB_PORT=${REPLICAS_PORT:-8080}
PORTS=($((LB_PORT + 1)) $((LB_PORT + 2)))
TRAFFIC=(python3 scripts/replicas-traffic.py)
. scripts/lib-postgres.sh

say() { printf '\n== %s\n' "$*"; }
die() { echo "replicas: error: $*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------------
if [[ -n ${SWITCHYARD_BIN:-} ]]; then
    BIN=$SWITCHYARD_BIN
else
    BIN=
    for candidate in .build/release/switchyard .build/debug/switchyard; do
        [[ -x $candidate ]] || continue
        if [[ -z $BIN || $candidate -nt $BIN ]]; then BIN=$candidate; fi
    done
    [[ -n $BIN ]] || die "no gateway binary: run 'swift build' (or 'swift build -c release'), or set SWITCHYARD_BIN"
fi
[[ -x $BIN ]] || die "$BIN is not an executable"
BIN=$(realpath "$BIN")
for tool in curl python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    [[ $(id -u) == 0 ]] || die "nginx is needed (Debian: apt-get install nginx-light)"
    echo "installing nginx-light (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$LB_PORT" "${PORTS[@]}"; do
    if port_in_use "$port"; then die "port $port is already in use on 127.0.0.1 (REPLICAS_PORT picks others)"; fi
done

# --- cleanup ----------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/switchyard-replicas.XXXXXX)
# nginx's workers run as nobody when started as root: they must be able to reach their temp dirs.
chmod 711 "$WORK"
RPID=("" "")
NGINX_PID=
alive() { local state; state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true); [[ -n $state && $state != Z ]]; }
stop_pid() { # PID SIGNAL SECONDS: signal, wait that long, then SIGKILL
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill "-$2" "$pid" 2>/dev/null || true
    for ((i = 0; i < $3 * 10; i++)); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -d $WORK ]] && touch "$WORK/stop-load"
    for pid in ${LOAD_PID:-} ${STREAMS_PID:-}; do stop_pid "$pid" TERM 5; done
    local stoppers=()
    for pid in "${RPID[@]}"; do
        [[ -n $pid ]] || continue
        stop_pid "$pid" TERM 45 &
        stoppers+=($!)
    done
    for pid in "${stoppers[@]}"; do wait "$pid" 2>/dev/null || true; done
    stop_pid "$NGINX_PID" QUIT 10
    pg_throwaway_stop
    if ((status != 0 && status != 130)); then
        echo "replicas: logs kept in $WORK (replica1.log, replica2.log, nginx/error.log)" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- database -----------------------------------------------------------------------------------------
if [[ -n ${SWITCHYARD_DATABASE:-} ]]; then
    [[ $SWITCHYARD_DATABASE == postgres://* || $SWITCHYARD_DATABASE == postgresql://* ]] ||
        die "SWITCHYARD_DATABASE must be a postgres:// URL (several replicas need PostgreSQL)"
    DATABASE=$SWITCHYARD_DATABASE
    DB_NOTE="given by SWITCHYARD_DATABASE"
else
    say "starting a throw-away PostgreSQL cluster"
    pg_throwaway_start -c fsync=off -c synchronous_commit=off -c full_page_writes=off
    DATABASE=$(pg_createdb switchyard)
    DB_NOTE="throw-away cluster in $PG_DIR, removed on exit"
fi
ADMIN_KEY=${SWITCHYARD_ADMIN_KEY:-sk-admin-replicas-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}

# --- the replicas' config -------------------------------------------------------------------------------
CONFIG=$WORK/switchyard.yaml
{
    echo "# Written by scripts/replicas.sh from switchyard.yaml: the same file for every replica."
    # ${…} in a config value is the environment's: a literal $ in the URL is written $$.
    awk -v db="${DATABASE//\$/\$\$}" '
        /^database:/ { print "database: \"" db "\"   # shared by every replica"; next }
        { print }
        /^providers:$/ {
            print "  # Added by scripts/replicas.sh: three-second streams, to watch a replica drain."
            print "  slow: {kind: test, tokens: 150, token_delay: 20ms}"
        }
        /^models:$/ {
            print "  slow:"
            print "    description: \"150 tokens 20 ms apart (scripts/replicas.sh): a stream to watch a drain.\""
            print "    deployments: [{provider: slow}]"
        }
    ' switchyard.yaml
    cat <<'EOF'

# Several replicas on one PostgreSQL (docs/DEPLOYMENT.md).
replicas:
  heartbeat: 1s                  # how often a replica renews its concurrency leases and says it is alive
  dead_after: 10s                # a replica unseen this long is dead: a survivor releases its holds and slots
EOF
} >"$CONFIG"
grep -q '^database: "' "$CONFIG" || die "switchyard.yaml has no top-level 'database:' line to replace"

start_replica() { # INDEX (0 or 1): starts it in the background, sets RPID[INDEX]
    local i=$1
    SWITCHYARD_HOST=127.0.0.1 SWITCHYARD_PORT=${PORTS[i]} SWITCHYARD_ADMIN_KEY=$ADMIN_KEY \
        "$BIN" serve --config "$CONFIG" >>"$WORK/replica$((i + 1)).log" 2>&1 &
    RPID[i]=$!
}
ready_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$1/ready" || true; }
wait_ready() { # INDEX: waits (60 s at most) until the replica's /ready answers 200
    local i=$1 n
    for ((n = 0; n < 600; n++)); do
        [[ $(ready_code "${PORTS[i]}") == 200 ]] && return 0
        alive "${RPID[i]}" || break
        sleep 0.1
    done
    echo "replica $((i + 1)) did not get ready; its log:" >&2
    tail -30 "$WORK/replica$((i + 1)).log" >&2
    return 1
}

# --- nginx ------------------------------------------------------------------------------------------------
NGX=$WORK/nginx
mkdir -p "$NGX"
chmod 711 "$NGX"
if [[ $(id -u) == 0 ]]; then NGINX_USER="user nobody $(id -gn nobody);"; else NGINX_USER=""; fi
DOWN=()  # the replicas (0, 1) marked down in nginx's config
write_nginx_conf() {
    local i
    {
        cat <<EOF
# Written by scripts/replicas.sh: nginx in front of two replicas (docs/DEPLOYMENT.md).
daemon off;
master_process on;               # a reload (SIGHUP) takes a replica out or puts it back
worker_processes 1;
$NGINX_USER
pid $NGX/nginx.pid;
error_log $NGX/error.log notice;
events { worker_connections 1024; }
http {
    log_format upstream '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent upstream=\$upstream_addr upstream_status=\$upstream_status \$request_time s';
    access_log $NGX/access.log upstream;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;

    upstream switchyard {
EOF
        for i in 0 1; do
            printf '        server 127.0.0.1:%s max_fails=1 fail_timeout=5s%s;\n' "${PORTS[i]}" \
                "$([[ " ${DOWN[*]} " == *" $i "* ]] && echo ' down')"
        done
        cat <<EOF
        keepalive 32;                # idle keep-alive connections to the replicas, per worker
    }
    server {
        listen 127.0.0.1:$LB_PORT;
        client_max_body_size 32m;    # uploads (files.max_bytes 20 MiB) and audio (25 MiB)
        location / {
            proxy_pass http://switchyard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;     # streams go out chunk by chunk
            proxy_read_timeout 600s;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;   # only when a POST never reached a replica
            proxy_next_upstream_tries 2;
            add_header x-switchyard-upstream \$upstream_addr always;   # which replica answered
        }
    }
}
EOF
    } >"$NGX/nginx.conf.new"
    "$NGINX_BIN" -t -q -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf.new" ||
        die "nginx rejected the config it was given: $NGX/nginx.conf.new"
    mv "$NGX/nginx.conf.new" "$NGX/nginx.conf"
}
nginx_workers() { ps -o pid= --ppid "$NGINX_PID" 2>/dev/null | tr -d ' ' || true; }
# Rewrites the config with the replicas in DOWN marked down and reloads nginx. With --wait, also waits
# until the workers of the old config have finished their requests and exited, so that no request can
# still go where the old config sent it.
nginx_reload() {
    local old pid n
    old=$(nginx_workers)
    write_nginx_conf
    kill -HUP "$NGINX_PID"
    [[ ${1:-} == --wait ]] || return 0
    for ((n = 0; n < 600; n++)); do
        local left=0
        for pid in $old; do alive "$pid" && left=1; done
        if ((left == 0)) && [[ -n $(nginx_workers) ]]; then return 0; fi
        sleep 0.1
    done
    die "nginx's old workers did not exit within 60 s of the reload"
}
start_nginx() {
    local n
    write_nginx_conf
    "$NGINX_BIN" -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" >"$NGX/stdout.log" 2>&1 &
    NGINX_PID=$!
    for ((n = 0; n < 100; n++)); do
        [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$LB_PORT/health" || true) == 200 ]] && return 0
        alive "$NGINX_PID" || break
        sleep 0.1
    done
    cat "$NGX/stdout.log" "$NGX/error.log" >&2
    die "nginx did not start"
}

# --- start ----------------------------------------------------------------------------------------------
say "starting replica 1 on 127.0.0.1:${PORTS[0]} ($BIN)"
start_replica 0
wait_ready 0 || exit 1
# The second starts once the first has migrated the database and made the demo account.
say "starting replica 2 on 127.0.0.1:${PORTS[1]}"
start_replica 1
wait_ready 1 || exit 1
say "starting nginx on 127.0.0.1:$LB_PORT"
start_nginx
LB=http://127.0.0.1:$LB_PORT
DEMO_KEY=$(sed -n "s/.*answers to the public key '\([^']*\)'.*/\1/p; s/.*the key (shown only now): \(sk-sy-[A-Za-z0-9]*\).*/\1/p" \
    "$WORK/replica1.log" | head -1)

# --- --check: a rolling restart under traffic ------------------------------------------------------------
if [[ $MODE == check ]]; then
    say "an account and a key with limits that never refuse"
    read -r ACCOUNT KEY < <("${TRAFFIC[@]}" setup --url "$LB" --admin-key "$ADMIN_KEY" | sed 's/ACCOUNT=//; s/KEY=//')
    [[ -n ${KEY:-} ]] || die "could not create the check's key"
    BALANCE_BEFORE=$("${TRAFFIC[@]}" balance --url "$LB" --key "$KEY")
    echo "account $ACCOUNT, balance $BALANCE_BEFORE"

    say "a few requests through nginx"
    "${TRAFFIC[@]}" smoke --url "$LB" --key "$KEY" --out "$WORK/smoke.jsonl"

    say "requests keep flowing through nginx (4 clients, every other request streamed)"
    "${TRAFFIC[@]}" load --url "$LB" --key "$KEY" --until "$WORK/stop-load" --out "$WORK/load.jsonl" \
        --max-seconds 150 &
    LOAD_PID=$!
    sleep 2

    say "three 3-second streams straight to replica 1, to be in flight when it is stopped"
    "${TRAFFIC[@]}" streams --url "http://127.0.0.1:${PORTS[0]}" --key "$KEY" --ready "$WORK/streams-started" \
        --out "$WORK/streams.jsonl" &
    STREAMS_PID=$!
    for ((n = 0; n < 350; n++)); do [[ -e $WORK/streams-started ]] && break; sleep 0.1; done
    [[ -e $WORK/streams-started ]] || die "the streams to replica 1 did not start"

    say "rolling restart of replica 1: out of nginx (down + reload), SIGTERM, drain, start, back in"
    DOWN=(0); nginx_reload --wait
    echo "nginx: replica 1 marked down; the old workers have finished"
    kill -TERM "${RPID[0]}"
    for ((n = 0; n < 50; n++)); do [[ $(ready_code "${PORTS[0]}") == 503 ]] && break; sleep 0.05; done
    "${TRAFFIC[@]}" drained --url "http://127.0.0.1:${PORTS[0]}" --key "$KEY"
    wait "$STREAMS_PID" || die "the streams in flight on replica 1 did not finish cleanly"
    STREAMS_PID=
    for ((n = 0; n < 450; n++)); do alive "${RPID[0]}" || break; sleep 0.1; done
    alive "${RPID[0]}" && die "replica 1 did not exit within 45 s of SIGTERM"
    code=0; wait "${RPID[0]}" || code=$?
    ((code == 0)) || die "replica 1 exited with status $code after SIGTERM (expected 0)"
    echo "replica 1 drained and exited with status 0"
    start_replica 0
    wait_ready 0 || exit 1
    echo "replica 1 started again and is ready"
    DOWN=(); nginx_reload --wait
    BACK_AT=$(date +%s.%N)
    echo "nginx: replica 1 back in"
    sleep 2
    touch "$WORK/stop-load"
    wait "$LOAD_PID" || die "the clients' load ended badly"
    LOAD_PID=

    say "every request succeeded and is on the ledger exactly once"
    "${TRAFFIC[@]}" verify --url "$LB" --admin-key "$ADMIN_KEY" --account "$ACCOUNT" --key "$KEY" \
        --balance-before "$BALANCE_BEFORE" --results "$WORK/smoke.jsonl" "$WORK/load.jsonl" "$WORK/streams.jsonl"
    python3 - "$WORK/load.jsonl" "$BACK_AT" "127.0.0.1:${PORTS[0]}" <<'PY' || die "replica 1 got no traffic after it was put back"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
back = [r for r in rows if r["t"] >= float(sys.argv[2]) and r["replica"] == sys.argv[3]]
print(f"after replica 1 was put back it answered {len(back)} of the clients' requests")
sys.exit(0 if back else 1)
PY
    say "check passed"
    exit 0
fi

# --- interactive ----------------------------------------------------------------------------------------
KEY_HINT=${DEMO_KEY:-KEY}
cat <<EOF

Two Switchyard replicas on one PostgreSQL, behind nginx:
  nginx (balancer)  $LB
  replica 1         http://127.0.0.1:${PORTS[0]}   pid ${RPID[0]}   log $WORK/replica1.log
  replica 2         http://127.0.0.1:${PORTS[1]}   pid ${RPID[1]}   log $WORK/replica2.log
  database          ${DATABASE%%\?*}   ($DB_NOTE)
  config            $CONFIG (both replicas)
  admin key         $ADMIN_KEY
  demo key          ${DEMO_KEY:-(none printed: the database was not new; make one with the admin API)}

Try it (the x-switchyard-upstream header says which replica answered):
  curl -i $LB/v1/chat/completions -H 'authorization: Bearer $KEY_HINT' \\
      -H 'content-type: application/json' -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hello"}]}'
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} %header{x-switchyard-upstream}\\n' \\
      $LB/v1/chat/completions -H 'authorization: Bearer $KEY_HINT' -H 'content-type: application/json' \\
      -d '{"model": "qwen", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}'; done
  curl -N $LB/v1/chat/completions -H 'authorization: Bearer $KEY_HINT' -H 'content-type: application/json' \\
      -d '{"model": "slow", "stream": true, "messages": [{"role": "user", "content": "Hello"}]}'
  curl $LB/admin/v1/accounts -H 'authorization: Bearer $ADMIN_KEY'
The demo key is held to 10 requests a minute and 2 at once across both replicas: the 11th request
within a minute gets 429, whichever replica answers it.

A rolling restart: stop replica 1 with
  kill -TERM ${RPID[0]}
It drains: its /ready answers 503 (curl -i http://127.0.0.1:${PORTS[0]}/ready), its streams in flight
finish, new requests to it get 503 shutting_down, then it exits. nginx alone has no active health
checks, so this script plays that part (as HAProxy's 'option httpchk GET /ready' would): within half
a second of /ready turning 503 it marks the replica down in nginx and reloads; a request nginx sent it
in that half second got the 503. When the process has exited the script starts it again, waits for
/ready 200 and puts it back. kill -KILL instead shows a crash: the restarted replica releases what
the dead one held (or replica 2 does, after replicas.dead_after). scripts/replicas.sh --check runs
the clean way: out of nginx first, then SIGTERM.

Ctrl-C stops everything.
EOF

# The balancer's active check: a replica whose /ready is not 200 is marked down, and put back when it is.
set_down() { # INDEX 0|1
    local i=$1 rest=()
    for j in "${DOWN[@]}"; do [[ $j == "$i" ]] || rest+=("$j"); done
    if [[ $2 == 1 ]]; then rest+=("$i"); fi
    DOWN=("${rest[@]}")
    nginx_reload
}
OUT=(0 0)
PIDS_SHOWN="${RPID[0]} ${RPID[1]}"
while true; do
    for i in 0 1; do
        name="replica $((i + 1))"
        if ! alive "${RPID[i]}"; then
            code=0; wait "${RPID[i]}" 2>/dev/null || code=$?
            echo "$name exited with status $code$( ((code > 128)) && echo " (signal $((code - 128)))")"
            if ((OUT[i] == 0)); then set_down "$i" 1; OUT[i]=1; echo "nginx: $name marked down"; fi
            start_replica "$i"
            if wait_ready "$i"; then
                echo "$name started again (pid ${RPID[i]}) and is ready"
            else
                echo "$name did not start; trying again in a few seconds"; sleep 3; continue
            fi
        fi
        code=$(ready_code "${PORTS[i]}")
        if ((OUT[i] == 0)) && [[ $code != 200 ]]; then
            set_down "$i" 1; OUT[i]=1
            echo "$name: /ready answers $code; nginx: marked down"
        elif ((OUT[i] == 1)) && [[ $code == 200 ]]; then
            set_down "$i" 0; OUT[i]=0
            echo "$name: /ready answers 200; nginx: back in"
        fi
    done
    if [[ "${RPID[0]} ${RPID[1]}" != "$PIDS_SHOWN" ]]; then
        PIDS_SHOWN="${RPID[0]} ${RPID[1]}"
        echo "replica pids now: 1 = ${RPID[0]}, 2 = ${RPID[1]}"
    fi
    sleep 0.5
done
