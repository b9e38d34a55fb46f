#!/usr/bin/env python3
"""A development server for the web console: serves console/ from the work tree (edit a file, reload
the page: no rebuild, no re-embedding) at `/` and `/console/<file>` with the same security headers as
the gateway, and forwards everything else (/v1, /admin, /llm_api, /api_user, /health, ...) to a
running gateway, streams included (server-sent events are relayed as they arrive, and a browser that
leaves closes the upstream connection, so the gateway sees the disconnect).

    .build/debug/switchyard serve --config my.yaml          # the gateway, e.g. on :8080
    python3 tests/console/dev_server.py --gateway http://127.0.0.1:8080 --port 8090
    # open http://127.0.0.1:8090/

The browser tests (tests/console) use it when the gateway they start does not serve the console
itself (an older binary: GET / is not text/html). Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import select
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"

# The same policy and headers the gateway sends with every console file (see docs/CONSOLE.md).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".txt": "text/plain; charset=utf-8", ".webmanifest": "application/manifest+json",
}
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length", "host",
}


def make_handler(gateway: str, console_dir: Path, quiet: bool):
    target = urllib.parse.urlsplit(gateway)
    host, port = target.hostname or "127.0.0.1", target.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "switchyard-console-dev"

        def log_message(self, fmt, *args):  # never the query string: it could carry a key
            if not quiet:
                sys.stderr.write(f"dev_server: {self.command} {urllib.parse.urlsplit(self.path).path} {args[1] if len(args) > 1 else ''}\n")

        # ---- the console's own files ----

        def static(self) -> bool:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/":
                name = "index.html"
            elif path.startswith("/console/"):
                name = path[len("/console/"):]
            else:
                return False
            file = (console_dir / name).resolve()
            if ".." in name or console_dir.resolve() not in file.parents or not file.is_file() or file.suffix not in TYPES:
                self.send_plain(404, '{"error":{"message":"Unknown console file.","type":"invalid_request_error","param":null,"code":"unknown_url"}}')
                return True
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", TYPES[file.suffix])
            self.send_header("Content-Length", str(len(data)))
            for name_, value in SECURITY_HEADERS.items():
                self.send_header(name_, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return True

        def send_plain(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        # ---- everything else goes to the gateway ----

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{host}:{port}"
            upstream = http.client.HTTPConnection(host, port, timeout=300)
            done = threading.Event()
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                threading.Thread(target=self.watch_client, args=(upstream, done), daemon=True).start()
                response = upstream.getresponse()
            except OSError as error:
                done.set()
                upstream.close()
                if self.client_left:
                    self.close_connection = True
                    return
                self.send_plain(502, '{"error":{"message":"dev_server: the gateway is unreachable: %s","type":"api_error","param":null,"code":"upstream_unreachable"}}' % str(error).replace('"', "'"))
                return
            try:
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                if self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    chunk = response.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the browser left: closing upstream tells the gateway
            finally:
                done.set()
                upstream.close()

        client_left = False

        def watch_client(self, upstream: http.client.HTTPConnection, done: threading.Event) -> None:
            """While the gateway works on a request, notices a browser that leaves (an aborted
            fetch) and closes the upstream connection, as the gateway would see it directly."""
            while not done.is_set():
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0.2)
                    if not readable:
                        continue
                    if self.connection.recv(1, socket.MSG_PEEK):
                        return  # another request on the same connection: not a disconnect
                except (OSError, ValueError):
                    pass
                if done.is_set():
                    return
                self.client_left = True
                try:
                    if upstream.sock:
                        upstream.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

        def handle_any(self) -> None:
            if self.command in ("GET", "HEAD") and self.static():
                return
            self.forward()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

    return Handler


class DevServer:
    """The server on a thread of its own (for the tests): DevServer(gateway).start() → .base"""

    def __init__(self, gateway: str, port: int = 0, host: str = "127.0.0.1", console_dir: Path = CONSOLE, quiet: bool = True):
        self.httpd = ThreadingHTTPServer((host, port), make_handler(gateway, console_dir, quiet))
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="console-dev-server", daemon=True)

    def start(self) -> "DevServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="the running gateway (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--console", default=str(CONSOLE), help="the console's files (default: console/ of this repo)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    server = DevServer(args.gateway, args.port, args.host, Path(args.console), args.quiet)
    print(f"console dev server on {server.base}/ (console files from {args.console}, API from {args.gateway})", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
