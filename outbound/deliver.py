"""Deliver one outbox row: claim it, render it once, send it, record what happened.

A row is claimed by a conditional UPDATE (still pending, and its time has come — or it still
carries the lease the sweep dispatched it with), which pushes `next_attempt_at` forward as a
lease: two workers never send one row at once, and a worker that dies mid-send leaves a row
the sweep picks up again once the lease runs out. The bytes are rendered on the first attempt
and stored in `raw` in the claiming transaction; every retry resends exactly those bytes.
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.domain.settings import Settings
from gateway.services.runtime import Runtime
from outbound.compose import Composer
from store.models import AddressState, OutboxMail

log = logging.getLogger("ticketgw.outbound")

# How long a claimed row is left alone while one worker renders and sends it.
SEND_LEASE = timedelta(minutes=5)


class PermanentFailure(Exception):
    """The relay refused the mail for good (5xx): retrying would not help."""


class TemporaryFailure(Exception):
    """The relay is unreachable or answered 4xx: try again later."""


class Transport(Protocol):
    def send(self, sender: str, recipient: str, raw: bytes) -> None: ...


class RelayTransport:
    """SMTP to the configured relay; one connection per worker thread, reused between mails."""

    def __init__(self, host: str, port: int, *, user: str = "", password: str = "",
                 starttls: bool = False, local_hostname: str = "localhost",
                 timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.user, self.password, self.starttls = user, password, starttls
        self.local_hostname = local_hostname
        self.timeout = timeout
        self._local = threading.local()

    def _connect(self) -> smtplib.SMTP:
        # An explicit local_hostname: the default asks socket.getfqdn(), which can wait on DNS.
        smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname,
                            timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            _close(smtp)
            raise
        return smtp

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            self._send(sender, recipient, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            code, text = next(iter(exc.recipients.values()))
            raise _classified(code, text) from None
        except smtplib.SMTPAuthenticationError as exc:
            # our configuration, not the mail: keep retrying until the operator fixes it
            self._drop()
            raise TemporaryFailure(f"relay login failed: {exc.smtp_code} {_text(exc.smtp_error)}"
                                   ) from None
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _classified(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {type(exc).__name__}: {exc}"
                                   ) from None

    def _send(self, sender: str, recipient: str, raw: bytes) -> None:
        conn: smtplib.SMTP | None = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.sendmail(sender, [recipient], raw)
                return
            except smtplib.SMTPServerDisconnected:
                self._drop()  # the relay closed an idle connection: one fresh try
        conn = self._local.conn = self._connect()
        conn.sendmail(sender, [recipient], raw)

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            _close(conn)

    def close(self) -> None:
        self._drop()


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classified(code: int, text: Any) -> Exception:
    message = f"relay answered {code} {_text(text)}".strip()
    return PermanentFailure(message) if 500 <= code < 600 else TemporaryFailure(message)


class MaildirTransport:
    """No relay configured: every mail becomes a file in the outbox Maildir."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            for sub in ("tmp", "new", "cur"):  # a Maildir is these three folders
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            mailbox.Maildir(str(self.path), factory=None, create=False).add(raw)
        except OSError as exc:
            raise TemporaryFailure(f"maildir {self.path}: {exc}") from None


def transport_for(settings: Settings) -> Transport:
    relay = settings.smtp_relay
    if relay is None:
        return MaildirTransport(settings.outbox_maildir)
    return RelayTransport(relay.host, relay.port, user=settings.smtp_relay_user,
                          password=settings.smtp_relay_password,
                          starttls=settings.smtp_relay_starttls,
                          local_hostname=settings.mail_domain)


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off while the relay is down: 1, 2, 4 … minutes, at most an hour, then give up."""

    max_attempts: int = 12
    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.first_delay * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_delay)


@dataclass(frozen=True)
class Prepared:
    recipient: str
    raw: bytes


class Deliverer:
    """Delivers outbox rows for one process; thread-safe (each call has its own sessions)."""

    def __init__(self, runtime: Runtime, *, transport: Transport | None = None,
                 composer: Composer | None = None, retry: RetryPolicy | None = None) -> None:
        self.runtime = runtime
        self.sessions = runtime.sessions
        self.settings = runtime.settings
        self.transport = transport or transport_for(runtime.settings)
        self.composer = composer or Composer(runtime.settings, runtime.tokens)
        self.retry = retry or RetryPolicy()
        self.sender = runtime.settings.address("support")

    def deliver(self, outbox_id: int, lease: datetime | None = None) -> str:
        """Deliver one row; returns sent, retry, failed, deferred or skipped (not ours now)."""
        now = self.runtime.clock.now()
        with self.sessions.begin() as session:
            if not _claim(session, outbox_id, now, lease):
                return "skipped"
            row = session.get(OutboxMail, outbox_id, populate_existing=True)
            assert row is not None
            prepared = self._prepare(session, row, now)
            if isinstance(prepared, str):
                return prepared
        try:
            self.transport.send(self.sender, prepared.recipient, prepared.raw)
        except PermanentFailure as exc:
            return self._failed(outbox_id, str(exc))
        except TemporaryFailure as exc:
            return self._temporary(outbox_id, str(exc))
        return self._sent(outbox_id)

    def _prepare(self, session: Session, row: OutboxMail, now: datetime) -> Prepared | str:
        suppressed = _suppressed_since(session, row.recipient)
        if suppressed is not None:
            row.state, row.next_attempt_at = "failed", None
            row.last_error = (f"not mailed: {row.recipient} is suppressed since "
                              f"{suppressed:%Y-%m-%d %H:%M:%S}Z after a hard bounce")
            _fail_merged(session, row)
            log.warning("outbox suppressed", extra={"outbox_id": row.id})
            return "failed"
        if row.raw is None:
            release_at = self._cap_release(session, row, now)
            if release_at is not None:
                row.state, row.next_attempt_at = "deferred", release_at
                log.info("outbox deferred by cap", extra={"outbox_id": row.id})
                return "deferred"
            try:
                composed = self.composer.compose(session, row, now)
            except Exception as exc:  # a template or data fault parks this mail, not the others
                row.state, row.next_attempt_at = "failed", None
                row.last_error = f"rendering failed: {type(exc).__name__}: {exc}"[:2000]
                _fail_merged(session, row)
                log.exception("outbox rendering failed", extra={"outbox_id": row.id})
                return "failed"
            row.raw, row.message_id = composed.raw, composed.message_id
        return Prepared(row.recipient, row.raw)

    def _cap_release(self, session: Session, row: OutboxMail, now: datetime) -> datetime | None:
        """When a row over the notification cap may go (as a digest), or None to send now."""
        if row.ticket_id is None or (row.payload or {}).get("digest_of") is not None:
            return None
        same = (OutboxMail.recipient == row.recipient, OutboxMail.ticket_id == row.ticket_id)
        held: datetime | None = session.execute(
            select(func.min(OutboxMail.next_attempt_at)).where(
                *same, OutboxMail.state == "deferred", OutboxMail.next_attempt_at.is_not(None))
        ).scalar_one_or_none()
        if held is not None:
            return held  # join the digest already waiting: mail stays in order
        count, seconds = self.settings.notify_cap
        window = timedelta(seconds=seconds)
        sent = session.execute(
            select(OutboxMail.message_id, func.min(OutboxMail.sent_at))
            .where(*same, OutboxMail.state == "sent", OutboxMail.sent_at > now - window)
            .group_by(OutboxMail.message_id)
        ).all()
        if len(sent) < count:
            return None
        oldest = min(at for _, at in sent if at is not None)
        return oldest + window

    def _sent(self, outbox_id: int) -> str:
        now = self.runtime.clock.now()
        with self.sessions.begin() as session:
            # columns, not the row: the stored bytes need not come back from the database
            payload, message_id = session.execute(
                update(OutboxMail).where(OutboxMail.id == outbox_id)
                .values(state="sent", sent_at=now, next_attempt_at=None, last_error=None,
                        attempts=OutboxMail.attempts + 1)
                .returning(OutboxMail.payload, OutboxMail.message_id)
                .execution_options(synchronize_session=False)).one()
            merged = (payload or {}).get("digest_of") or []
            if merged:
                session.execute(
                    update(OutboxMail).where(OutboxMail.id.in_(merged))
                    .values(state="sent", sent_at=now, message_id=message_id,
                            next_attempt_at=None)
                    .execution_options(synchronize_session=False))
        log.info("outbox sent", extra={"outbox_id": outbox_id})
        return "sent"

    def _temporary(self, outbox_id: int, error: str) -> str:
        now = self.runtime.clock.now()
        with self.sessions.begin() as session:
            row = session.get(OutboxMail, outbox_id, populate_existing=True)
            assert row is not None
            row.attempts += 1
            row.last_error = error[:2000]
            if row.attempts >= self.retry.max_attempts:
                row.state, row.next_attempt_at = "failed", None
                _fail_merged(session, row)
                log.error("outbox gave up", extra={"outbox_id": outbox_id, "error": error})
                return "failed"
            row.next_attempt_at = now + self.retry.delay(row.attempts)
        log.warning("outbox retry later", extra={"outbox_id": outbox_id, "error": error})
        return "retry"

    def _failed(self, outbox_id: int, error: str) -> str:
        with self.sessions.begin() as session:
            row = session.get(OutboxMail, outbox_id, populate_existing=True)
            assert row is not None
            row.attempts += 1
            row.state, row.next_attempt_at, row.last_error = "failed", None, error[:2000]
            _fail_merged(session, row)
        log.error("outbox refused", extra={"outbox_id": outbox_id, "error": error})
        return "failed"


def _fail_merged(session: Session, row: OutboxMail) -> None:
    """A digest that fails takes the mail it carries with it: failed, and visible as such."""
    merged = (row.payload or {}).get("digest_of") or []
    if merged:
        session.execute(
            update(OutboxMail).where(OutboxMail.id.in_(merged), OutboxMail.state == "deferred")
            .values(state="failed", next_attempt_at=None,
                    last_error=f"held for the digest outbox {row.id}: {row.last_error}"[:2000])
            .execution_options(synchronize_session=False))


def _claim(session: Session, outbox_id: int, now: datetime, lease: datetime | None) -> bool:
    """Take the row for this worker, or report that it is not ours to send now."""
    due = OutboxMail.next_attempt_at <= now
    if lease is not None:
        due = due | (OutboxMail.next_attempt_at == lease)
    until = max(now, lease or now) + SEND_LEASE
    result = session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == outbox_id, OutboxMail.state == "pending", due)
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _suppressed_since(session: Session, address: str) -> datetime | None:
    state = session.get(AddressState, address.strip().lower())
    if state is None and address != address.strip().lower():
        state = session.get(AddressState, address)
    return state.suppressed_since if state is not None else None


def retry_failed(runtime: Runtime) -> int:
    """`ticketgw outbox retry`: failed rows become pending again, with a fresh retry budget."""
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        result = session.execute(
            update(OutboxMail).where(OutboxMail.state == "failed")
            .values(state="pending", attempts=0, next_attempt_at=now)
            .execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
