"""Limits that keep one SMTP client from holding the listener: a session's whole life, and
commands in a row that send no mail. (Connections per client are counted in inbound.smtp.)

The idle timeout alone does not do it: a client that sends NOOP or RSET every minute is never
idle, and one address could keep every connection for as long as it liked. aiosmtpd's own call
limits count each command for the whole session (NOOP 100, RSET not at all) and never reset.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.services import metrics
from inbound.smtp_data import BulkData

log = logging.getLogger("ticketgw.inbound.smtp")

SESSION_TOO_LONG = "421 4.4.2 this connection has been open too long; please reconnect"
NO_PROGRESS = "421 4.7.0 too many commands without sending a mail; please reconnect"
# a session's defaults; the listener takes TICKETGW_SMTP_SESSION_SECONDS and
# TICKETGW_SMTP_IDLE_COMMANDS (the same numbers unless set)
SESSION_LIFETIME = 600.0  # seconds
MAX_IDLE_COMMANDS = 20
# What counts as a command without a mail until a DATA is answered. RCPT does not: an MTA
# names every recipient of a mail, and all but one of ours are refused.
_NO_PROGRESS = ("NOOP", "RSET", "HELO", "EHLO", "VRFY", "EXPN", "HELP", "MAIL", "DATA")


def client_key(peer: Any) -> str:
    """Whose connection it is, for the per-client cap: an IPv4 address; for IPv6 its /64
    (what one host or site usually gets), an IPv4-mapped one as the IPv4 address."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
    if ":" not in host:  # an IPv4 peer's address is already written one way only
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return f"{ipaddress.IPv6Address(address.packed[:8] + bytes(8))}/64"


class BoundedSession(BulkData):
    """A session that ends with `421` after `lifetime` seconds, or after `max_idle_commands`
    commands in a row that send no mail. A mail in intake when its life ends is answered
    first. The server calls `start_life` once the connection is its own."""

    def __init__(self, *args: Any, lifetime: float = SESSION_LIFETIME,
                 max_idle_commands: int = MAX_IDLE_COMMANDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = ""  # whose it is (client_key), for the log
        self._lifetime = lifetime
        self._life: asyncio.TimerHandle | None = None
        self._expired = False  # its life ended while a mail was in intake: closed after
        self._taking = False  # a mail is in intake: its answer comes before any 421
        self._idle_budget = max_idle_commands
        self._idle_commands = 0

    def start_life(self) -> None:
        self._life = self.loop.call_later(self._lifetime, self._expire)

    def end_life(self) -> None:
        if self._life is not None:
            self._life.cancel()

    def taking(self, busy: bool) -> None:
        """A mail is in intake (True), or it has been answered (False): the transaction is
        complete, which is progress."""
        self._taking = busy
        if not busy:
            self._idle_commands = 0

    def _expire(self) -> None:
        if self._taking:  # the DATA command closes the session once the answer is out
            log.info("SMTP session life over during intake", extra={"client": self.client})
            self._expired = True
        else:
            self._close_with(SESSION_TOO_LONG)

    def _close_with(self, answer: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.info("SMTP session closed", extra={"client": self.client, "answer": answer})
            assert isinstance(self.transport, asyncio.WriteTransport)
            metrics.smtp_replied(answer)
            self.transport.write(answer.encode("ascii") + b"\r\n")
            self.transport.close()


_Command = Callable[[BoundedSession, str], Awaitable[None]]


def _counted(method: _Command) -> _Command:
    """A command that sends no mail by itself: one more in a row, or the 421 past the budget.
    Also where a session whose life ended during intake is closed, once its answer is out."""

    @functools.wraps(method)
    async def command(self: BoundedSession, arg: str) -> None:
        self._idle_commands += 1
        if self._idle_commands > self._idle_budget:
            log.warning("SMTP client sent too many commands without a mail",
                        extra={"client": self.client})
            await self.push(NO_PROGRESS)
            assert self.transport is not None
            self.transport.close()
            return
        await method(self, arg)
        if self._expired:
            self._close_with(SESSION_TOO_LONG)

    return command


for _name in _NO_PROGRESS:  # aiosmtpd finds its commands by their names (smtp_NOOP...)
    setattr(BoundedSession, f"smtp_{_name}",
            _counted(getattr(BoundedSession, f"smtp_{_name}")))
