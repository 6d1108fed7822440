"""A real SMTP server on loopback that keeps what it receives, or refuses it with 451."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

REFUSE_STAGES = ("MAIL", "RCPT", "DATA")


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted transaction: the envelope, the bytes as received, and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage = field(repr=False)
    # time.monotonic() on arrival: one clock for every process of the machine, so a sender
    # elsewhere can tell how long a mail took to get here (bench/processes.py)
    received_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = self._sink._refusal_at("MAIL")
        if refusal is not None:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._sink._refusal_at("RCPT")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._sink._refusal_at("DATA")
        if refusal is not None:
            return refusal
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        self._sink._store(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=_parse(raw),
            )
        )
        return "250 2.0.0 OK: queued"


def _parse(raw: bytes) -> EmailMessage:
    # Parsed with LF line ends, so bodies compare equal to Python strings; `raw` keeps the
    # CRLF wire form.
    message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
    assert isinstance(message, EmailMessage)
    return message


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with an ephemeral port, its event loop in a thread of its own.

    aiosmtpd's `Controller(port=0)` does not work in 1.4.6 (it probes port 0), hence
    `loop.create_server` and the port read back from the listening socket.
    """

    def __init__(self, host: str = "127.0.0.1", data_size_limit: int = 33554432) -> None:
        self.host = host
        self.port = 0
        self._data_size_limit = data_size_limit
        self._cond = threading.Condition()
        self._messages: list[ReceivedMail] = []
        self._refuse: tuple[str, str] | None = None  # (stage, reply)
        self._refused = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SmtpSink:
        self._thread.start()
        if not self._started.wait(timeout):
            raise AssertionError(f"SMTP sink did not start within {timeout} s")
        if self._start_error is not None:
            raise AssertionError(f"SMTP sink did not start: {self._start_error!r}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                self._loop.create_server(self._protocol, self.host, 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported to start() in the calling thread
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        # Stopped: close what is still open so no task is left pending on a closed loop.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def _protocol(self) -> SMTP:
        # A fixed hostname: the default asks socket.getfqdn(), which can wait on DNS.
        return SMTP(
            _Handler(self),
            hostname="sink.localhost",
            data_size_limit=self._data_size_limit,
            enable_SMTPUTF8=True,
        )

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"SMTP sink did not stop within {timeout} s")

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """`host:port`, the form TICKETGW_SMTP_RELAY takes."""
        return f"{self.host}:{self.port}"

    # -- what was received ------------------------------------------------------------

    def _store(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._messages.append(mail)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
            self._refused = 0

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least `count` mails arrived; return them all. Fails at the deadline."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(
                    f"SMTP sink got {len(self._messages)} mail(s), expected {count} "
                    f"within {timeout} s"
                )
            return list(self._messages)

    # -- a relay that is down ---------------------------------------------------------

    def go_down(self, stage: str = "MAIL", reply: str = "451 4.3.0 Relay unavailable") -> None:
        """Refuse every transaction with a temporary error at `stage` (MAIL, RCPT or DATA)."""
        if stage not in REFUSE_STAGES:
            raise ValueError(f"stage must be one of {REFUSE_STAGES}, not {stage!r}")
        with self._cond:
            self._refuse = (stage, reply)

    def go_up(self) -> None:
        with self._cond:
            self._refuse = None

    @property
    def is_down(self) -> bool:
        with self._cond:
            return self._refuse is not None

    @property
    def refused(self) -> int:
        """How many transactions were refused since start (or the last clear())."""
        with self._cond:
            return self._refused

    def wait_for_refused(self, count: int = 1, timeout: float = 10.0) -> int:
        """Block until at least `count` transactions were refused (e.g. a sender's retries)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._refused >= count, timeout):
                raise AssertionError(
                    f"SMTP sink refused {self._refused} transaction(s), expected {count} "
                    f"within {timeout} s"
                )
            return self._refused

    def _refusal_at(self, stage: str) -> str | None:
        with self._cond:
            if self._refuse is None or self._refuse[0] != stage:
                return None
            self._refused += 1
            self._cond.notify_all()
            return self._refuse[1]
