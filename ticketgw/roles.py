"""The long-running roles (`serve`, `smtp`, `imap`, `web`, `worker`, `scheduler`).

This is the one module that installs signal handlers: SIGTERM or SIGINT (Ctrl-C) asks a role
to stop, and each role then finishes what is in flight (mail being answered, jobs being
delivered) before it returns. Everything a role runs takes "when to stop" as an argument.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateway.domain.errors import ConfigError
from gateway.services.runtime import Runtime
from inbound.imap import run_imap
from inbound.listeners import ListenerProcesses, serve_smtp
from inbound.smtp import start_smtp
from ticketgw.broker import (
    Running,
    broker_check_for,
    build_broker,
    start_embedded,
    start_scheduler,
    start_worker,
)
from web.server import start_web

log = logging.getLogger("ticketgw.roles")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on SIGTERM or SIGINT while the block runs (main thread, no loop)."""

    def handler(signum: int, _frame: object) -> None:
        log.info("stop signal", extra={"signal": signal.Signals(signum).name})
        callback()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


async def until_stop_signal() -> None:
    """Return at the first SIGTERM or SIGINT this event loop receives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


_BIND_FAILURES = {errno.EADDRINUSE: "already in use",
                  errno.EADDRNOTAVAIL: "not an address of this machine",
                  errno.EACCES: "permission denied; ports below 1024 need privileges"}


@contextmanager
def listening(setting: str, host: str, port: int) -> Iterator[None]:
    """A listen address already taken is one line naming the setting, not a traceback."""
    try:
        yield
    except OSError as exc:
        why = _BIND_FAILURES.get(exc.errno or 0)
        if why is None:
            raise
        raise ConfigError(f"cannot listen on {host}:{port} ({why}); stop what uses it or set "
                          f"{setting} to another host:port") from None


def _block_until_signalled(running: Running, what: str) -> None:
    stop = threading.Event()
    log.info(f"{what} running", extra={"namespace": running.setup.namespace})
    try:
        with on_stop_signal(stop.set):
            while not stop.wait(0.5):
                pass
    finally:
        running.stop()
        log.info(f"{what} stopped")


def smtp(runtime: Runtime, *, rate: tuple[int, int] | None = None) -> None:
    """`ticketgw smtp`: TICKETGW_SMTP_PROCESSES listeners sharing the port; a stop signal
    stops them after the mail in flight is answered. `rate` overrides the per-sender limit
    (the bench sends everything from one address)."""
    listen = runtime.settings.smtp_listen
    if runtime.settings.smtp_processes <= 1:
        with listening("TICKETGW_SMTP_LISTEN", listen.host, listen.port):
            asyncio.run(serve_smtp(runtime, listen.host, listen.port, until_stop_signal,
                                   rate=rate))
        return
    # each child installs its own handlers (until_stop_signal in its loop); the parent
    # passes a signal on to them
    with listening("TICKETGW_SMTP_LISTEN", listen.host, listen.port):
        group = ListenerProcesses(runtime, runtime.settings.smtp_processes, until_stop_signal,
                                  rate=rate)
    with on_stop_signal(group.terminate):
        group.join()


def imap(runtime: Runtime) -> None:
    """`ticketgw imap`: poll TICKETGW_IMAP_URL until a stop signal."""
    if not runtime.settings.imap_url:
        raise ConfigError("TICKETGW_IMAP_URL is empty: set it to imap://user:password@host/INBOX "
                          "(or imaps://) to run the IMAP poller")
    stop = threading.Event()
    with on_stop_signal(stop.set):
        run_imap(runtime, stop)


def worker(runtime: Runtime, *, threads: int = 8) -> None:
    """`ticketgw worker`: deliver outbox mail and run the sweeps the scheduler enqueues.

    With the embedded broker nothing else can reach this process's queue, so it schedules
    its own sweeps."""
    setup = build_broker(runtime.settings)
    running = start_worker(runtime, setup, threads=threads, scheduler=setup.embedded)
    _block_until_signalled(running, "worker")


def scheduler(runtime: Runtime) -> None:
    """`ticketgw scheduler`: enqueue the outbox and deadline sweeps on a fixed period."""
    if runtime.settings.broker_url == "embedded":
        raise ConfigError("`ticketgw scheduler` needs a shared broker (TICKETGW_BROKER_URL "
                          "redis://… or amqp://…); with the embedded broker, `ticketgw worker` "
                          "and `ticketgw serve` schedule their own sweeps")
    _block_until_signalled(start_scheduler(runtime), "scheduler")


def web(runtime: Runtime) -> None:
    """`ticketgw web`: the web pages and the REST API on TICKETGW_HTTP_LISTEN."""

    async def serve_web() -> None:
        listen = runtime.settings.http_listen
        with listening("TICKETGW_HTTP_LISTEN", listen.host, listen.port):
            handle = await start_web(runtime, listen.host, listen.port,
                                     broker_check=broker_check_for(runtime.settings))
        await until_stop_signal()
        log.info("web stopping")
        await handle.stop()

    asyncio.run(serve_web())


def serve(runtime: Runtime) -> None:
    """`ticketgw serve`: every role in one process on the embedded defaults.

    SMTP listener and web server share one event loop; the Dramatiq worker and the scheduler
    (embedded broker by default) and the IMAP poller (when configured) run in threads. A stop
    signal stops accepting, lets mail in flight finish, then stops the workers.
    """
    running = start_embedded(runtime)
    stop_imap = threading.Event()
    imap_thread: threading.Thread | None = None
    if runtime.settings.imap_url:
        imap_thread = threading.Thread(target=run_imap, args=(runtime, stop_imap),
                                       name="imap", daemon=True)
        imap_thread.start()
    try:
        asyncio.run(_serve(runtime))
    finally:
        stop_imap.set()
        if imap_thread is not None:
            imap_thread.join(timeout=30)
        running.stop()
        log.info("serve stopped")


async def _serve(runtime: Runtime) -> None:
    settings = runtime.settings
    smtp_at, http_at = settings.smtp_listen, settings.http_listen
    with listening("TICKETGW_SMTP_LISTEN", smtp_at.host, smtp_at.port):
        smtp_listener = await start_smtp(runtime, smtp_at.host, smtp_at.port)
    try:
        with listening("TICKETGW_HTTP_LISTEN", http_at.host, http_at.port):
            web_handle = await start_web(runtime, http_at.host, http_at.port,
                                         broker_check=broker_check_for(settings))
    except ConfigError:
        await smtp_listener.stop()
        raise
    log.info("serve ready", extra={
        "smtp": f"{settings.smtp_listen.host}:{smtp_listener.port}",
        "http": f"{settings.http_listen.host}:{web_handle.port}",
        "database": runtime.engine.url.render_as_string(hide_password=True),
        "broker": settings.broker_url.split("@")[-1],
        "outbox": settings.outbox_maildir if settings.smtp_relay is None
        else f"relay {settings.smtp_relay}",
        "imap": bool(settings.imap_url),
    })
    await until_stop_signal()
    log.info("serve stopping; finishing mail in flight")
    await smtp_listener.stop()
    await web_handle.stop()
