"""Serving the app with uvicorn in a running event loop (`ticketgw web` and `ticketgw serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn

from gateway.services.runtime import Runtime
from web.app import create_app

log = logging.getLogger("ticketgw.web")
STARTUP_SECONDS = 10.0


class _Server(uvicorn.Server):
    """uvicorn that leaves signals alone: the role running it (`ticketgw.roles`) is the one
    place that installs signal handlers, and stops the server through `WebHandle.stop`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(runtime: Runtime, *,
                broker_check: Callable[[], bool] | None = None) -> uvicorn.Server:
    """A uvicorn server for the app; serve it on sockets you bound (see `bind`)."""
    app = create_app(runtime, broker_check=broker_check)
    config = uvicorn.Config(
        app, lifespan="off", access_log=False,  # access lines would log the tokens in URLs
        log_config=None, server_header=False, proxy_headers=False,
    )
    return _Server(config)


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
