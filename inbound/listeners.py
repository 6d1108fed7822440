"""Running SMTP listeners: one in this event loop, or several forked processes sharing the port.

Each runs until told to stop. Signals are not handled here: the role (`ticketgw.roles`) says
when to stop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Awaitable, Callable

from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.balance import Peers, stop_with_parent
from inbound.smtp import start_smtp

log = logging.getLogger("ticketgw.inbound.smtp")

StopWhen = Callable[[], Awaitable[None]]  # returns when the listener should stop


async def serve_smtp(runtime: Runtime, host: str, port: int, stop_when: StopWhen, *,
                     reuse_port: bool = False, rate: tuple[int, int] | None = None,
                     peers: Peers | None = None) -> None:
    """Listen until `stop_when()` returns, then finish the mail in flight and stop."""
    listener = await start_smtp(runtime, host, port, reuse_port=reuse_port, rate=rate,
                                peers=peers)
    log.info("SMTP listening on %s:%d", host, listener.port)
    await stop_when()
    log.info("SMTP stopping; finishing mail in flight")
    await listener.stop()


class ListenerProcesses:
    """`count` forked listener processes sharing one port (SO_REUSEPORT), connections spread
    over them (inbound.balance). Each child serves until its own `stop_when()` returns;
    `terminate()` asks every child to stop (SIGTERM), `join()` waits for them."""

    def __init__(self, runtime: Runtime, count: int, stop_when: StopWhen, *,
                 rate: tuple[int, int] | None = None) -> None:
        listen = runtime.settings.smtp_listen
        # reserve the port first so a port of 0 is one port for all, and a taken port fails
        # here
        probe = socket.socket(socket.AF_INET6 if ":" in listen.host else socket.AF_INET)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((listen.host, listen.port))
        port = probe.getsockname()[1]
        context = multiprocessing.get_context("fork")
        peers = Peers(count)
        self.children = [
            context.Process(target=_child, daemon=False,
                            args=(runtime, listen.host, port, stop_when, rate, peers, i,
                                  os.getpid()))
            for i in range(count)]
        runtime.engine.dispose()  # no pooled connection crosses the fork
        for child in self.children:
            child.start()
        probe.close()
        peers.close()  # each end now lives only in its process: a dead one refuses hand-overs

    def terminate(self) -> None:
        for child in self.children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    def join(self) -> None:
        for child in self.children:
            child.join()
            metrics.process_exited(child.pid)


def _child(runtime: Runtime, host: str, port: int, stop_when: StopWhen,
           rate: tuple[int, int] | None, peers: Peers, index: int, parent: int) -> None:
    stop_with_parent(parent)
    runtime.engine.dispose(close=False)  # SQLAlchemy's advice for forked processes
    peers.join(index)
    asyncio.run(serve_smtp(runtime, host, port, stop_when, reuse_port=True, rate=rate,
                           peers=peers))
