"""`ticketgw serve`: every role in one process on the embedded defaults.

SMTP listener and web server share one event loop; the Dramatiq worker and the scheduler
(embedded broker by default) and the IMAP poller (when configured) run in threads. SIGTERM or
Ctrl-C stops accepting, lets mail in flight finish, then stops the workers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from gateway.broker import start_embedded
from gateway.services.runtime import Runtime
from gateway.web.server import broker_check_for, start_web
from inbound.smtp import start_smtp

log = logging.getLogger("ticketgw.serve")


def run_serve(runtime: Runtime) -> None:
    running = start_embedded(runtime)
    stop_imap = threading.Event()
    imap_thread: threading.Thread | None = None
    if runtime.settings.imap_url:
        from inbound.imap import run_imap

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
    smtp = await start_smtp(runtime, settings.smtp_listen.host, settings.smtp_listen.port)
    web = await start_web(runtime, settings.http_listen.host, settings.http_listen.port,
                          broker_check=broker_check_for(settings))
    log.info("serve ready", extra={
        "smtp": f"{settings.smtp_listen.host}:{smtp.port}",
        "http": f"{settings.http_listen.host}:{web.port}",
        "database": runtime.engine.url.render_as_string(hide_password=True),
        "broker": settings.broker_url.split("@")[-1],
        "outbox": settings.outbox_maildir if settings.smtp_relay is None
        else f"relay {settings.smtp_relay}",
        "imap": bool(settings.imap_url),
    })
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("serve stopping; finishing mail in flight")
    await smtp.stop()
    await web.stop()
