"""Serving the app with uvicorn: alone (`ticketgw web`) or inside `ticketgw serve`'s loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from urllib.parse import urlsplit

import uvicorn

from gateway.broker import split_namespace
from gateway.domain.settings import Settings
from gateway.services.runtime import Runtime

log = logging.getLogger("ticketgw.web")
STARTUP_SECONDS = 10.0


class _Server(uvicorn.Server):
    """uvicorn without its signal capture (embedded) or without re-raising the signal (alone).

    uvicorn re-raises a captured SIGINT/SIGTERM after shutting down; a role that stopped
    cleanly should exit 0 instead, and an embedding process handles signals itself.
    """

    def __init__(self, config: uvicorn.Config, *, own_signals: bool) -> None:
        super().__init__(config)
        self.own_signals = own_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.own_signals:
            yield
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("web stopping", extra={"signal": signum})
            self.handle_exit(signum, frame)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def make_server(runtime: Runtime, *, broker_check: Callable[[], bool] | None = None,
                own_signals: bool = False) -> uvicorn.Server:
    """A uvicorn server for the app; serve it on sockets you bound (see `bind`)."""
    from gateway.web import create_app

    app = create_app(runtime, broker_check=broker_check)
    config = uvicorn.Config(
        app, lifespan="off", access_log=False,  # access lines would log the tokens in URLs
        log_config=None, server_header=False, proxy_headers=False,
    )
    return _Server(config, own_signals=own_signals)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a port in use is an OSError we can report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@dataclass
class WebHandle:
    """A running web server inside someone else's event loop."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.server.force_exit = True
            await self.task
        finally:
            self.sock.close()


async def start_web(runtime: Runtime, host: str, port: int, *,
                    broker_check: Callable[[], bool] | None = None) -> WebHandle:
    """Start serving in the running loop; returns once it accepts connections (port 0 works)."""
    sock = bind(host, port)
    server = make_server(runtime, broker_check=broker_check)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("the web server stopped while starting")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the web server did not start in time")
        await asyncio.sleep(0.01)
    log.info("web listening", extra={"listen": f"{host}:{sock.getsockname()[1]}"})
    return WebHandle(server, task, sock)


def broker_check_for(settings: Settings) -> Callable[[], bool]:
    """Does the configured broker answer? The embedded one always does."""
    url = split_namespace(settings.broker_url)[0]
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        def redis_ping() -> bool:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        return redis_ping
    if scheme in ("amqp", "amqps"):
        def amqp_open() -> bool:
            import pika

            params = pika.URLParameters(url)
            params.socket_timeout = 2
            params.blocked_connection_timeout = 2
            params.connection_attempts = 1
            connection = pika.BlockingConnection(params)
            connection.close()
            return True
        return amqp_open
    return lambda: True


def run_web(runtime: Runtime, host: str, port: int) -> None:
    """`ticketgw web`: serve until SIGTERM or SIGINT, then stop cleanly."""
    sock = bind(host, port)
    server = make_server(runtime, broker_check=broker_check_for(runtime.settings),
                         own_signals=True)
    log.info("web listening", extra={"listen": f"{host}:{sock.getsockname()[1]}"})
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
