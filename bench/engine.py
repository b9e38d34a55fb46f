#!/usr/bin/env python3
"""What a warm managed engine costs through the gateway: the same requests to a llama.cpp engine
(llama-cpp-python serving the tiny model of ../shared/engines/make_tiny_gguf.py) called directly and
through Switchyard, which started that very engine as a `managed` provider.

Usage: bench/engine.py [--requests 200] [--max-tokens 4] [--gateway .build/release/switchyard]
Needs .build/engine-venv (scripts/test-engines.sh makes it). Prints the figures; asserts nothing.

The engine generates one request at a time, so requests are sequential: the gateway's share is its
added latency per request (p50/p90) and its CPU time per request (from /proc). Streaming adds the
time to first token. All traffic stays on 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def call(port, path, body, headers, stream):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json", **headers})
    response = connection.getresponse()
    first = None
    if stream:
        while True:
            line = response.readline()
            if not line:
                break
            if first is None and line.startswith(b"data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - started
    else:
        response.read()
    total = time.perf_counter() - started
    assert response.status == 200, response.status
    connection.close()
    return total, first


def measure(port, path, headers, args, stream):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": args.max_tokens,
            "seed": 1, "stream": stream}
    for _ in range(5):
        call(port, path, body, headers, stream)
    totals, firsts = [], []
    for _ in range(args.requests):
        total, first = call(port, path, body, headers, stream)
        totals.append(total * 1e6)
        if first is not None:
            firsts.append(first * 1e6)
    return totals, firsts


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--gateway", default=str(ROOT / ".build" / "release" / "switchyard"))
    args = parser.parse_args()
    python = ROOT / ".build" / "engine-venv" / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="switchyard-engine-bench-"))
    model = work / "tiny.gguf"
    subprocess.run([python, ROOT.parent / "shared" / "engines" / "make_tiny_gguf.py", "--out", model], check=True,
                   capture_output=True)
    port = free_port()
    command = [str(python), "-P", "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
               "--host", "127.0.0.1", "--port", "${PORT}", "--n_ctx", "2048", "--interrupt_requests", "false",
               "--verbose", "false"]
    (work / "gateway.yaml").write_text(f"""
server: {{host: 127.0.0.1, port: {port}}}
database: sqlite:{work}/bench.sqlite
admin_key: bench-admin
log_level: error
providers:
  tiny: {{kind: managed, command: {json.dumps(command)}, health_path: /openapi.json, env: {{OMP_NUM_THREADS: "1"}}}}
models:
  tiny: {{deployments: [{{provider: tiny, model: tiny}}], price: {{input: "0.001"}}}}
""")
    gateway = subprocess.Popen([args.gateway, "serve", "--config", work / "gateway.yaml"], cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        key = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and key is None:
            line = gateway.stdout.readline()
            if "sk-sy-" in line:
                key = "sk-sy-" + line.split("sk-sy-")[1].split()[0]
        assert key, "the gateway printed no demo key"
        while time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/health")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        auth = {"authorization": f"Bearer {key}"}
        call(port, "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}],
                                           "max_tokens": 1}, auth, False)  # loads the engine
        admin = http.client.HTTPConnection("127.0.0.1", port)
        admin.request("GET", "/admin/v1/engines", headers={"authorization": "Bearer bench-admin"})
        engine = json.loads(admin.getresponse().read())["data"][0]
        print(f"engine: pid {engine['pid']} port {engine['port']}, loaded in {engine['last_load_ms']} ms")
        print(f"{args.requests} sequential requests, max_tokens {args.max_tokens}, after 5 warm-up requests")
        print(f"{'':10} {'direct p50':>11} {'gateway p50':>12} {'added p50':>10} {'added p90':>10} {'gw CPU/req':>11}")
        for stream in (False, True):
            direct, direct_first = measure(engine["port"], "/v1/chat/completions", {}, args, stream)
            before = ticks(gateway.pid)
            through, through_first = measure(port, "/v1/chat/completions", auth, args, stream)
            cpu = (ticks(gateway.pid) - before) / HZ / (args.requests + 5) * 1e6
            label = "stream" if stream else "whole"
            print(f"{label:10} {quantile(direct, .5):9.0f}us {quantile(through, .5):10.0f}us "
                  f"{quantile(through, .5) - quantile(direct, .5):8.0f}us "
                  f"{quantile(through, .9) - quantile(direct, .9):8.0f}us {cpu:9.0f}us")
            if stream and direct_first and through_first:
                print(f"{'':10} time to first token p50: direct {quantile(direct_first, .5):.0f}us, "
                      f"gateway {quantile(through_first, .5):.0f}us")
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)


if __name__ == "__main__":
    main()
