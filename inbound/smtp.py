"""The SMTP listener: refuse what it can at RCPT, run intake off the event loop, answer.

Started with `loop.create_server(lambda: SMTP(...))` (aiosmtpd's Controller(port=0) fails in
1.4.6, upstream issue #388). The event loop never waits on the database: intake runs on
threads that take the mail queued meanwhile as one batch with one commit (inbound.batching).
With several listener processes (inbound.listeners), connections are spread over them
(inbound.balance).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import socket
import time
from email._header_value_parser import get_addr_spec, get_angle_addr
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound.balance import Peers
from inbound.batching import IntakeQueue, pool_size
from inbound.intake import TEMPFAIL, Incoming, check_recipient
from inbound.smtp_limits import (
    BoundedSession,
    client_key,
)
from inbound.smtp_tls import tls_context
from inbound.supervisor import IntakeSupervisor

log = logging.getLogger("ticketgw.inbound.smtp")

TOO_BIG = "552 5.3.4 message too big for this system"
ONE_RECIPIENT = "452 4.5.3 one of our addresses per message; send the others separately"
TOO_MANY_CONNECTIONS = b"421 4.7.0 too many connections; try again later\r\n"
TOO_MANY_FROM_CLIENT = b"421 4.7.0 too many connections from your address; try again later\r\n"
IDLE_TIMEOUT = 120.0  # seconds without a command or data line (RFC 5321 4.5.3.2 minimums)
MAX_CONNECTIONS = 200  # a listener process's connections, from everyone
SHUTDOWN_GRACE = 30.0  # seconds mail in flight may take to finish on SIGTERM
# aiosmtpd's own answers for too-large mail carry no enhanced status code (RFC 3463)
_REWRITE = {
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
    "552 Error: Too much mail data": TOO_BIG,
}
# `<dot-atom@host.name>` then ESMTP parameters: what nearly every client sends (RFC 5321 4.1.2)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<(({_ATEXT}(?:\.{_ATEXT})*)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"[ \t]*((?:[^ \t(][^(\"\\]*)?)")
_CALL_LIMITS = {"NOOP": 100, "VRFY": 10, "EXPN": 10, "HELP": 10, "EHLO": 20, "HELO": 20,
                "*": 1_000_000}


class Gate:
    """Connections (in all, and per client) and mails in flight, shared by every session of
    one listener process."""

    def __init__(self, max_connections: int, max_per_client: int = MAX_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.connections = 0
        self.per_client: dict[str, int] = {}
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()


class InboundSMTP(BoundedSession):
    """aiosmtpd's SMTP with DATA read in large pieces (inbound.smtp_data), enhanced codes on
    size refusals, limits on connections (in all and per client) and on a session's life
    and idle commands (inbound.smtp_limits), and (with several listener processes) new
    connections spread evenly over them."""

    def __init__(self, handler: InboundHandler, gate: Gate, *, peers: Peers | None = None,
                 handed: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._peers = peers
        self._handed = handed  # a sibling handed it over: served here, never handed again
        self._gone = False  # refused, or handed to a sibling: not this process's any more

    def _refuse(self, transport: asyncio.BaseTransport, answer: bytes) -> None:
        self._gone = True
        assert isinstance(transport, asyncio.WriteTransport)
        metrics.smtp_replied(answer)
        transport.write(answer)
        transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._gate.connections >= self._gate.max_connections:
            self._refuse(transport, TOO_MANY_CONNECTIONS)
            return
        if self._peers is not None and not self._handed:
            sock = transport.get_extra_info("socket")
            # before the greeting: the sibling's session starts as if it had accepted it
            if sock is not None and self._peers.hand_over(sock.fileno()):
                self._gone = True
                transport.close()  # this process's descriptor only: the connection lives on
                return
        # counted where it is served: a connection handed over is counted by the sibling
        client = client_key(transport.get_extra_info("peername"))
        if self._gate.per_client.get(client, 0) >= self._gate.max_per_client:
            log.warning("too many connections from one client", extra={"client": client})
            self._refuse(transport, TOO_MANY_FROM_CLIENT)
            return
        self.client = client
        self._gate.per_client[client] = self._gate.per_client.get(client, 0) + 1
        self._gate.connections += 1
        if self._peers is not None:
            self._peers.opened()
        super().connection_made(transport)
        self.start_life()

    def connection_lost(self, error: Exception | None) -> None:
        if self._gone:
            return
        self.end_life()
        left = self._gate.per_client.pop(self.client, 1) - 1
        if left:
            self._gate.per_client[self.client] = left
        self._gate.connections -= 1
        if self._peers is not None:
            self._peers.closed()
        super().connection_lost(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's own parse of a MAIL/RCPT address, without the typing.Protocol class
        that its version defines on every call (three quarters of its cost, about 0.12 ms a
        command), and the common `<local@domain> PARAMS` read by a pattern before the full
        RFC 5322 parser: the same answers (tests/inbound/test_smtp.py compares them)."""
        if not arg:
            return "", ""
        simple = _SIMPLE_PATH.fullmatch(arg)
        if simple is not None and not (self.local_part_limit
                                       and len(simple[2]) > self.local_part_limit):
            return simple[1], simple[3]
        parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        try:
            address, rest = parse(arg)
            addr: str = address.addr_spec
        except Exception:  # noqa: BLE001 - CPython's parser also fails with IndexError and
            return None, None  # AttributeError (`x@`, `"`, `x@[`): a malformed address
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _REWRITE.get(status, status)
        metrics.smtp_replied(status)
        await super().push(status)


class InboundHandler:
    def __init__(self, runtime: Runtime, intake: IntakeQueue, gate: Gate, *,
                 rate: tuple[int, int] | None = None) -> None:
        self.runtime = runtime
        self.intake = intake
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
        started = time.perf_counter()
        raw = envelope.original_content or b""
        if len(raw) > self.runtime.settings.max_message_bytes:
            return TOO_BIG
        sender = (envelope.mail_from or "").strip()
        sender = "" if sender in ("<>", "") else sender.strip("<>")
        mail = Incoming(bytes(raw), sender, envelope.rcpt_tos[0], "smtp", self.rate)
        session_of = server if isinstance(server, InboundSMTP) else None
        self.gate.in_flight += 1
        self.gate.idle.clear()
        if session_of is not None:
            session_of.taking(True)
        try:
            # shielded: a client that hangs up mid-DATA does not abandon a half-run intake
            outcome = await asyncio.shield(self.intake.submit(mail))
        finally:
            if session_of is not None:
                session_of.taking(False)
            self.gate.in_flight -= 1
            if self.gate.in_flight == 0:
                self.gate.idle.set()
        metrics.mail_answered(outcome.reply, time.perf_counter() - started)
        return outcome.reply

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default is a permanent 500 naming the exception: mail would bounce on
        # an outage, and internals would leak
        if isinstance(error, TLSSetupException):
            # a client that asked for STARTTLS and then could not (or would not) shake
            # hands: scanners do it all day; aiosmtpd closes the connection
            cause = error.__cause__
            log.warning("SMTP TLS handshake failed; connection closed", extra={
                "error": f"{type(cause).__name__}: {cause}" if cause else "no handshake"})
            return TEMPFAIL
        log.exception("SMTP session error", exc_info=error)
        return TEMPFAIL


class Listener:
    """A running SMTP server and what it needs to stop cleanly."""

    def __init__(self, server: asyncio.Server, intake: IntakeQueue, gate: Gate,
                 supervisor: IntakeSupervisor, peers: Peers | None = None) -> None:
        self.server = server
        self.intake = intake
        self.gate = gate
        self.supervisor = supervisor
        self.peers = peers

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, let mail in flight finish (its 250 is sent), then close."""
        self.server.close()
        if self.peers is not None:
            self.peers.stop(asyncio.get_running_loop())
        try:
            await asyncio.wait_for(self.gate.idle.wait(), grace)
        except TimeoutError:
            log.warning("SMTP stopped with %d mails in flight", self.gate.in_flight)
        await asyncio.sleep(0)  # let the sessions write their last answers
        await asyncio.get_running_loop().run_in_executor(None, self.intake.stop)
        await self.supervisor.stop()


async def start_smtp(runtime: Runtime, host: str, port: int, *, reuse_port: bool = False,
                     rate: tuple[int, int] | None = None,
                     max_connections: int = MAX_CONNECTIONS, max_per_client: int | None = None,
                     timeout: float = IDLE_TIMEOUT, lifetime: float | None = None,
                     max_idle_commands: int | None = None,
                     peers: Peers | None = None) -> Listener:
    """Listen on host:port (0 picks a free port: see `Listener.port`). `peers`: the other
    listener processes of the port, to spread connections over (inbound.balance).
    `max_per_client` defaults to TICKETGW_SMTP_MAX_PER_CLIENT, `lifetime` (a session's whole
    life, seconds) to TICKETGW_SMTP_SESSION_SECONDS, `max_idle_commands` to
    TICKETGW_SMTP_IDLE_COMMANDS; `timeout` is the idle time in seconds."""
    # what start-up made (mappers, compiled statements, templates) lives as long as the
    # process: the cyclic collector need not walk it again on every full pass (about 8 %
    # of the listener's CPU a mail, bench/inbound.py)
    gc.collect()  # garbage left now would be kept for good once frozen
    gc.freeze()
    settings = runtime.settings
    tls = tls_context(settings)  # before any thread starts: a bad file stops the start here
    gate = Gate(max_connections, max_per_client or settings.smtp_max_per_client)
    intake = IntakeQueue(runtime, pool_size(runtime), senders=lambda: gate.connections)
    handler = InboundHandler(runtime, intake, gate, rate=rate)

    def factory(handed: bool = False) -> InboundSMTP:
        return InboundSMTP(
            handler, gate, peers=peers, handed=handed,
            data_size_limit=settings.max_message_bytes, enable_SMTPUTF8=True,
            decode_data=False, hostname=settings.mail_domain, ident="ticketgw ESMTP",
            timeout=timeout, command_call_limit=_CALL_LIMITS,
            lifetime=settings.smtp_session_seconds if lifetime is None else lifetime,
            max_idle_commands=(settings.smtp_idle_commands if max_idle_commands is None
                               else max_idle_commands),
            tls_context=tls)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host, port, reuse_port=reuse_port or None, backlog=256)
    if peers is not None:
        def serve(sock: socket.socket) -> None:
            served = loop.connect_accepted_socket(lambda: factory(handed=True), sock)
            _HANDED.add(task := loop.create_task(served))
            task.add_done_callback(_HANDED.discard)

        peers.receive(loop, serve)
    bound = server.sockets[0].getsockname()[1]
    supervisor = IntakeSupervisor(runtime, intake, f"{socket.gethostname()}:{bound}")
    return Listener(server, intake, gate, supervisor, peers)


# kept until done: the loop holds tasks weakly
_HANDED: set[asyncio.Task[tuple[asyncio.Transport, InboundSMTP]]] = set()
