"""The SMTP listener: refuse what it can at RCPT, run intake off the event loop, answer.

Started with `loop.create_server(lambda: SMTP(...))` (aiosmtpd's Controller(port=0) fails in
1.4.6, upstream issue #388). The event loop never waits on the database: intake runs in a
thread pool sized to the database pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.services.runtime import Runtime
from inbound.intake import TEMPFAIL, check_recipient, receive

log = logging.getLogger("ticketgw.inbound.smtp")

TOO_BIG = "552 5.3.4 message too big for this system"
ONE_RECIPIENT = "452 4.5.3 one of our addresses per message; send the others separately"
TOO_MANY_CONNECTIONS = b"421 4.7.0 too many connections; try again later\r\n"
IDLE_TIMEOUT = 120.0  # seconds without a command or data line (RFC 5321 4.5.3.2 minimums)
MAX_CONNECTIONS = 200
SHUTDOWN_GRACE = 30.0  # seconds mail in flight may take to finish on SIGTERM
# aiosmtpd's own answers for too-large mail carry no enhanced status code (RFC 3463)
_REWRITE = {
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
    "552 Error: Too much mail data": TOO_BIG,
}
_CALL_LIMITS = {"NOOP": 100, "VRFY": 10, "EXPN": 10, "HELP": 10, "EHLO": 20, "HELO": 20,
                "*": 1_000_000}


class Gate:
    """Connections and mails in flight, shared by every session of one listener."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.connections = 0
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()


class InboundSMTP(SMTP):
    """aiosmtpd's SMTP with enhanced codes on size refusals and a connection limit."""

    def __init__(self, handler: InboundHandler, gate: Gate, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._gate.connections >= self._gate.max_connections:
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        self._gate.connections += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._gate.connections -= 1
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = _REWRITE.get(status, status)
        await super().push(status)


class InboundHandler:
    def __init__(self, runtime: Runtime, executor: ThreadPoolExecutor, gate: Gate, *,
                 rate: tuple[int, int] | None = None) -> None:
        self.runtime = runtime
        self.executor = executor
        self.gate = gate
        self.rate = rate

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        answer = check_recipient(self.runtime, address)
        if answer is not None:
            return answer
        if envelope.rcpt_tos:  # SPEC 11.16
            return ONE_RECIPIENT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.runtime.settings.max_message_bytes:
            return TOO_BIG
        sender = (envelope.mail_from or "").strip()
        sender = "" if sender in ("<>", "") else sender.strip("<>")
        job = functools.partial(receive, self.runtime, bytes(raw), envelope_from=sender,
                                recipient=envelope.rcpt_tos[0], channel="smtp", rate=self.rate)
        self.gate.in_flight += 1
        self.gate.idle.clear()
        try:
            # shielded: a client that hangs up mid-DATA does not abandon a half-run intake
            outcome = await asyncio.shield(
                asyncio.get_running_loop().run_in_executor(self.executor, job))
        finally:
            self.gate.in_flight -= 1
            if self.gate.in_flight == 0:
                self.gate.idle.set()
        return outcome.reply

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default is a permanent 500 naming the exception: mail would bounce on
        # an outage, and internals would leak
        log.exception("SMTP session error", exc_info=error)
        return TEMPFAIL


def pool_size(runtime: Runtime) -> int:
    """Threads for intake: the database pool's size. SQLite has one writer at a time and
    every intake writes: more threads only wait in its busy handler, which sleeps in steps
    of up to 100 ms and wrecks the tail latency (measured in bench/inbound.py)."""
    if runtime.engine.dialect.name == "sqlite":
        return 1
    size = getattr(runtime.engine.pool, "size", None)
    return max(2, int(size())) if callable(size) else 4


class Listener:
    """A running SMTP server and what it needs to stop cleanly."""

    def __init__(self, server: asyncio.Server, executor: ThreadPoolExecutor,
                 gate: Gate) -> None:
        self.server = server
        self.executor = executor
        self.gate = gate

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, let mail in flight finish (its 250 is sent), then close."""
        self.server.close()
        try:
            await asyncio.wait_for(self.gate.idle.wait(), grace)
        except TimeoutError:
            log.warning("SMTP stopped with %d mails in flight", self.gate.in_flight)
        await asyncio.sleep(0)  # let the sessions write their last answers
        self.executor.shutdown(wait=True)


async def start_smtp(runtime: Runtime, host: str, port: int, *, reuse_port: bool = False,
                     rate: tuple[int, int] | None = None,
                     max_connections: int = MAX_CONNECTIONS,
                     timeout: float = IDLE_TIMEOUT) -> Listener:
    """Listen on host:port (0 picks a free port: see `Listener.port`)."""
    gate = Gate(max_connections)
    executor = ThreadPoolExecutor(pool_size(runtime), thread_name_prefix="intake")
    handler = InboundHandler(runtime, executor, gate, rate=rate)
    settings = runtime.settings

    def factory() -> InboundSMTP:
        return InboundSMTP(
            handler, gate, data_size_limit=settings.max_message_bytes, enable_SMTPUTF8=True,
            decode_data=False, hostname=settings.mail_domain, ident="ticketgw ESMTP",
            timeout=timeout, command_call_limit=_CALL_LIMITS)

    server = await asyncio.get_running_loop().create_server(
        factory, host, port, reuse_port=reuse_port or None, backlog=256)
    return Listener(server, executor, gate)


def run_smtp(runtime: Runtime, *, rate: tuple[int, int] | None = None) -> None:
    """`ticketgw smtp`: settings.smtp_processes listeners sharing the port (SO_REUSEPORT);
    SIGTERM or SIGINT stops them after the mail in flight is answered. `rate` overrides the
    per-sender limit (the bench sends everything from one address)."""
    listen = runtime.settings.smtp_listen
    processes = runtime.settings.smtp_processes
    if processes <= 1:
        asyncio.run(_serve(runtime, listen.host, listen.port, reuse_port=False, rate=rate))
        return
    # reserve the port first so a port of 0 is one port for all, and a taken port fails here
    probe = socket.socket(socket.AF_INET6 if ":" in listen.host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    probe.bind((listen.host, listen.port))
    port = probe.getsockname()[1]
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_child, args=(runtime, listen.host, port, rate),
                                daemon=False) for _ in range(processes)]
    runtime.engine.dispose()  # no pooled connection crosses the fork
    for child in children:
        child.start()
    probe.close()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(runtime: Runtime, host: str, port: int, rate: tuple[int, int] | None) -> None:
    runtime.engine.dispose(close=False)  # SQLAlchemy's advice for forked processes
    asyncio.run(_serve(runtime, host, port, reuse_port=True, rate=rate))


async def _serve(runtime: Runtime, host: str, port: int, *, reuse_port: bool,
                 rate: tuple[int, int] | None = None) -> None:
    listener = await start_smtp(runtime, host, port, reuse_port=reuse_port, rate=rate)
    log.info("SMTP listening on %s:%d", host, listener.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("SMTP stopping; finishing mail in flight")
    await listener.stop()
