"""What the standalone Python benchmarks (disconnect.py, open_streams.py) share: starting the gateway
(fresh SQLite database, the demo key from its first-start output, as bench/run.sh does) and nginx
(the reference proxy of run.sh), reading a process's memory from /proc, a minimal SSE client on
asyncio protocols, percentiles, and keeping the output in bench/results/.

Only the standard library. Every server listens on 127.0.0.1; every wait is bounded.
"""

import asyncio
import datetime
import math
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"  # traffic stays on this machine
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, ".build", "release")
# Limits on every account and key, too high ever to refuse: the gateways the scripts start run with
# billing and limits on (issue 15). The same block as lib.sh's BENCH_LIMITS_YAML.
LIMITS_YAML = """limits:
  account: {requests_per_minute: 100000000, tokens_per_minute: 1000000000, concurrent: 100000}
  key: {requests_per_minute: 100000000, tokens_per_minute: 1000000000, concurrent: 100000}
"""


def percentile(values, p):
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def result_line(fields):
    """`RESULT key=value ...`, the form run.sh's `field` helper reads."""
    return "RESULT " + " ".join(f"{k}={fmt(v)}" for k, v in fields.items())


def table(header, rows):
    """A plain text table, columns as wide as their widest cell."""
    cells = [[str(c) for c in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def proc_status_kb(pid, key="VmRSS"):
    """A `kB` line of /proc/PID/status (VmRSS, VmHWM, RssAnon, …); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def cpu_ticks(pid):
    """utime + stime of a process in clock ticks (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def raise_nofile():
    """Sets this process's soft limit of open files to its hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def port_in_use(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def describe_build():
    """The line run.sh prints about what is measured."""
    if os.environ.get("BENCH_GATEWAY"):
        return f"gateway {os.environ['BENCH_GATEWAY']} (given by BENCH_GATEWAY)"
    git = ["git", "-C", ROOT]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "Sources", "Package.swift"]).returncode != 0
    return f"release; commit {commit or '?'}{' + uncommitted changes' if dirty else ''}"


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pinning():
    """BENCH_PIN=1, as in run.sh: the proxy under test on CPU 1, this script (client, upstream) on CPU 0.
    Returns the command prefix for the proxies and the one for the script's other helpers."""
    if os.environ.get("BENCH_PIN") == "1" and shutil.which("taskset"):
        os.sched_setaffinity(0, {0})
        return ["taskset", "-c", "1"], ["taskset", "-c", "0"]
    return [], []


class Output:
    """Tees stdout into bench/results/NAME-TIMESTAMP.txt, as run.sh keeps its full output."""

    def __init__(self, name):
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = os.path.join(ROOT, "bench", "results", f"{name}-{stamp}.txt")
        self.file = open(self.path, "w")
        self.stdout = sys.stdout
        sys.stdout = self

    def write(self, text):
        self.stdout.write(text)
        self.file.write(text)

    def flush(self):
        self.stdout.flush()
        self.file.flush()


class Servers:
    """The processes a benchmark starts; `stop()` ends exactly those (TERM, then KILL after 5 s) and keeps
    their logs next to the output file."""

    def __init__(self, output):
        self.output = output
        self.work = tempfile.mkdtemp(prefix="switchyard-bench-")
        self.procs = []  # (name, Popen)

    def log(self, name):
        return os.path.join(self.work, f"{name}.log")

    def spawn(self, name, argv):
        log = open(self.log(name), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        log.close()
        self.procs.append((name, proc))
        return proc

    def wait_ready(self, name, proc, ready_text=None, port=None, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if ready_text is not None:
                with open(self.log(name), errors="replace") as log:
                    if ready_text in log.read():
                        return
            elif port is not None and port_in_use(port):
                return
            time.sleep(0.1)
        with open(self.log(name), errors="replace") as log:
            tail = log.read()[-4000:]
        raise SystemExit(f"error: {name} did not start (exit status {proc.poll()}); its output:\n{tail}")

    def gateway(self, config_text, prefix=()):
        """Starts the gateway on a fresh SQLite database in the work dir; returns (Popen, demo key)."""
        binary = os.path.abspath(os.environ.get("BENCH_GATEWAY") or os.path.join(RELEASE, "switchyard"))
        config = os.path.join(self.work, "gateway.yaml")
        with open(config, "w") as f:
            f.write(config_text.replace("@WORK@", self.work))
        proc = self.spawn("gateway", [*prefix, binary, "serve", "--config", config])
        self.wait_ready("gateway", proc, ready_text="switchyard listening")
        with open(self.log("gateway"), errors="replace") as log:
            match = re.search(r"sk-sy-[A-Za-z0-9]+", log.read())
        return proc, (match.group(0) if match else None)

    def nginx(self, port, upstream_port, prefix=(), worker_connections=4096, rlimit=None):
        """nginx as run.sh runs it: one process, keep-alive to the upstream, HTTP/1.1, unbuffered."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise SystemExit("error: nginx is not installed (bench/run.sh installs nginx-light)")
        w = self.work
        conf = os.path.join(w, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
{f'worker_rlimit_nofile {rlimit};' if rlimit else ''}
pid {w}/nginx.pid;
error_log {w}/nginx-error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {w}/nginx-body;
    proxy_temp_path {w}/nginx-proxy;
    upstream up {{ server {HOST}:{upstream_port}; keepalive 256; }}
    server {{
        listen {HOST}:{port} backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
        proc = self.spawn("nginx", [*prefix, binary, "-p", w, "-e", f"{w}/nginx-error.log", "-c", conf])
        self.wait_ready("nginx", proc, port=port)
        return proc

    def check_alive(self, during):
        for name, proc in self.procs:
            if proc.poll() is not None:
                with open(self.log(name), errors="replace") as log:
                    tail = log.read()[-3000:]
                raise SystemExit(f"error: the {name} exited with status {proc.returncode} during {during}; "
                                 f"its last output:\n{tail}")

    def stop_one(self, proc, timeout=15):
        """Stops one server (TERM, then KILL) and forgets it; its log stays for `stop()` to keep."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop(self):
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        base = self.output.path[: -len(".txt")] if self.output else None
        for name in os.listdir(self.work):
            if name.endswith(".log") and base:
                shutil.copy(os.path.join(self.work, name), f"{base}-{name}")
        shutil.rmtree(self.work, ignore_errors=True)
        self.procs = []


def chat_request(port, body, key=None):
    """One HTTP/1.1 request with `Connection: close` (each stream is its own connection, as in streams.py)."""
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        + (f"Authorization: Bearer {key}\r\n" if key else "")
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class SSEClient(asyncio.Protocol):
    """One streaming response: de-chunks the body, splits SSE events and counts `data:` events.
    `first` is a future set (to time.monotonic()) at the first data event; `done` when the stream ends
    (`[DONE]`, the end of the body, an error event or the connection closing)."""

    def __init__(self, request):
        loop = asyncio.get_running_loop()
        self.request = request
        self.started = time.monotonic()
        self.first = loop.create_future()
        self.done = loop.create_future()
        self.head, self.raw, self.events = b"", b"", b""
        self.status = None
        self.chunked = False
        self.data_events = 0
        self.saw_done = False
        self.error = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        try:
            if self.status is None:
                self.head += data
                if b"\r\n\r\n" not in self.head:
                    return
                head, _, data = self.head.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                self.status = int(lines[0].split()[1])
                headers = {k.strip().lower(): v.strip().lower() for k, _, v in (l.partition(":") for l in lines[1:])}
                self.chunked = headers.get("transfer-encoding") == "chunked"
            if self.chunked:
                self.raw += data
                self._dechunk()
            else:
                self._feed(data)
        except Exception as error:  # a malformed response is a failed stream, not a crashed benchmark
            self._finish(f"parse error: {error!r}")

    def _dechunk(self):
        while not self.done.done():
            size_end = self.raw.find(b"\r\n")
            if size_end < 0:
                return
            size = int(self.raw[:size_end].split(b";")[0], 16)
            if size == 0:
                self._finish(None if self.saw_done else "body ended without [DONE]")
                return
            if len(self.raw) < size_end + 2 + size + 2:
                return
            self._feed(self.raw[size_end + 2: size_end + 2 + size])
            self.raw = self.raw[size_end + 2 + size + 2:]

    def _feed(self, data):
        self.events += data.replace(b"\r\n", b"\n")
        *complete, self.events = self.events.split(b"\n\n")
        for event in complete:
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    self.saw_done = True
                    self._finish(None)
                    return
                error = self.on_data(payload)
                if error is not None:
                    self._finish(error)
                    return

    def on_data(self, payload):
        """One `data:` payload other than `[DONE]`: counts it, sets `first`; an error event's text
        ends the stream (returned). A subclass that reads the payloads overrides it."""
        if payload.startswith(b'{"error"'):
            return f"error event: {payload[:160]!r}"
        self.data_events += 1
        if not self.first.done():
            self.first.set_result(time.monotonic())
        return None

    def _finish(self, error):
        if not self.done.done():
            if self.status is not None and self.status != 200 and error is None:
                error = f"status {self.status}"
            self.error = error
            self.done.set_result(time.monotonic())
        if not self.first.done():
            self.first.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def abort(self, reset=False):
        """Closes the socket at once without reading further: FIN, or RST with `reset` (SO_LINGER 0)."""
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def connection_lost(self, exc):
        self._finish(None if self.saw_done else f"connection closed early: {exc!r}")
