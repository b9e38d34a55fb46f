# Helpers the bench scripts share (bench/run.sh, bench/postgres.sh, bench/soak.sh): sourced after
# the script has set WORK (its temp dir) and PIDS (the servers it started, which its EXIT trap stops
# with stop_pids).

HZ=$(getconf CLK_TCK)

# Every gateway the benchmarks start runs with billing and limits on (issue 15): limits on every
# account and key, too high ever to refuse, so each request is admitted, counted and released by
# the limiter. benchlib.py's LIMITS_YAML is the same block for the Python scripts.
BENCH_LIMITS_YAML='limits:
  account: {requests_per_minute: 100000000, tokens_per_minute: 1000000000, concurrent: 100000}
  key: {requests_per_minute: 100000000, tokens_per_minute: 1000000000, concurrent: 100000}'
BENCH_LIMITS_LINE="limits: every account and key: requests_per_minute 100000000, tokens_per_minute 1000000000, concurrent 100000 (never refusing)"
TIMES=$WORK/times.txt

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a server in the background, waits (at most 30 s) for the line it prints when ready, and sets
# STARTED to its pid (not echoed: a $(...) subshell would lose the pid list the EXIT trap needs).
start() {
    local name=$1 ready=$2 i; shift 2
    "$@" >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
    for ((i = 0; i < 300; i++)); do
        if grep -qs "$ready" "$WORK/$name.log"; then return; fi
        if ! kill -0 "$STARTED" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "error: $name did not start; its output:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# Whether the process is alive (a zombie is not).
alive() { local state; state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true); [[ -n $state && $state != Z ]]; }
# Stops these servers: SIGTERM to all, then for each at most 10 s to exit before SIGKILL.
stop_pids() {
    local pid i
    for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
# The value of key=value in a RESULT line.
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# A field of /proc/PID/status (VmRSS, VmHWM, RssAnon…) in KB, or - when the process is gone.
vm() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$2/status" 2>/dev/null || echo -; }
# CPU time of a process (user + system), and of the whole machine, in clock ticks.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# CPU time of this shell's finished children (wrk, the stream client), in clock ticks. `times` must
# run in this shell: in a $(...) subshell it sees that subshell's children (none), so it writes to a
# file that children_ticks reads (call `builtin times >"$TIMES"` first, in the shell itself).
children_ticks() { awk -v hz="$HZ" 'NR == 2 {gsub(/[ms]/, " "); print int(($1 * 60 + $2 + $3 * 60 + $4) * hz)}' "$TIMES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
