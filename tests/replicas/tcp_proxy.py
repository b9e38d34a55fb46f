"""A TCP proxy on 127.0.0.1 that the test can cut and restore, to make a database unreachable.

`cut()` closes the listening socket (new connections are refused) and aborts every connection it
carries, both sides, at once. `blackhole()` keeps every connection open and keeps accepting new ones
but forwards nothing either way (a partition: the peer waits for an answer that never comes).
`restore()` aborts what is open and listens again on the same port, forwarding as before.
"""

from __future__ import annotations

import asyncio
import socket
import threading


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._blackholed = False
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.restore()

    def _run(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def restore(self) -> None:
        async def run() -> None:
            await self._close()
            self._blackholed = False
            await self._listen()

        self._run(run())

    def cut(self) -> None:
        async def run() -> None:
            await self._close()

        self._run(run())

    def blackhole(self) -> None:
        async def run() -> None:
            self._blackholed = True

        self._run(run())

    def close(self) -> None:
        try:
            self._run(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        if self._blackholed:
            try:  # swallow everything, answer nothing, until aborted
                while await reader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(upstream_writer.transport)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if self._blackholed:
                        continue  # dropped: nothing gets through a partition
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._transports.discard(writer.transport)
        self._transports.discard(upstream_writer.transport)
