"""A TCP proxy on loopback that can stop passing data on (a network partition), so a test
can freeze a client between two of its commands and then kill it there."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class PausableProxy:
    """Forwards 127.0.0.1:<port> to `target_port`; `pause()` holds every byte the clients
    send (the server hears nothing more) until `resume()`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)

    def start(self) -> PausableProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def pause(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing.set()
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _connection(self, client_reader: asyncio.StreamReader,
                          client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        upstream = asyncio.ensure_future(self._pump(client_reader, server_writer, hold=True))
        downstream = asyncio.ensure_future(self._pump(server_reader, client_writer, hold=False))
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    hold: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if hold:
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()
