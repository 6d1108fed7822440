"""Send one mail's bytes: the SMTP relay, or a Maildir when no relay is configured.

A transport answers a failed send with `PermanentFailure` (the relay refused the mail for good)
or `TemporaryFailure` (try again later); what to do about it is the deliverer's business.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from gateway.domain.settings import Settings
from store.files import private_dir, write_private

log = logging.getLogger("ticketgw.outbound")


class PermanentFailure(Exception):
    """The relay refused the mail for good (5xx): retrying would not help."""


class TemporaryFailure(Exception):
    """The relay is unreachable or answered 4xx: try again later."""


class Transport(Protocol):
    """Where a mail's bytes go; a failed send raises PermanentFailure or TemporaryFailure."""

    def send(self, sender: str, recipient: str, raw: bytes) -> None: ...

    def close(self) -> None:
        """Let go of what the calling thread holds open (the worker thread is stopping)."""


class _Connection(smtplib.SMTP):
    """One relay connection that knows whether the current mail's content has gone out."""

    content_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.content_started = True
        return super().data(msg)


class RelayTransport:
    """SMTP to the configured relay over one connection per worker thread, kept between mails.

    A connection is reused while it works and dropped on any error; the next mail opens a
    fresh one. Each mail is its own transaction with its one recipient, and one that fails
    never leaves the connection in use, so nothing of one mail reaches another's transaction.
    A kept connection the relay has since closed (idle timeout, restart) shows on the mail's
    first command, before any of its content was sent: that mail then goes over one new
    connection, without a probe (RSET or NOOP) costing a round trip on every mail.
    """

    def __init__(self, host: str, port: int, *, user: str = "", password: str = "",
                 starttls: bool = False, local_hostname: str = "localhost",
                 timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.user, self.password, self.starttls = user, password, starttls
        self.local_hostname = local_hostname
        self.timeout = timeout
        self._local = threading.local()

    def _connect(self) -> _Connection:
        # An explicit local_hostname: the default asks socket.getfqdn(), which can wait on DNS.
        smtp = _Connection(self.host, self.port, local_hostname=self.local_hostname,
                           timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            smtp.close()
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
        kept: _Connection | None = getattr(self._local, "conn", None)
        if kept is not None:
            kept.content_started = False
            try:
                kept.sendmail(sender, [recipient], raw)
                return
            except (smtplib.SMTPException, OSError) as exc:
                if kept.content_started or not _closed_on_us(exc):
                    raise
                self._drop()
                log.info("relay connection lost, reconnecting",
                         extra={"relay": f"{self.host}:{self.port}", "error": repr(exc)})
        conn = self._local.conn = self._connect()
        conn.sendmail(sender, [recipient], raw)

    def _drop(self) -> None:
        """Forget this thread's connection after an error: closed, without a QUIT that could
        wait on a relay that stopped answering."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """QUIT this thread's connection (the worker thread is stopping)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def _closed_on_us(exc: BaseException) -> bool:
    """The relay closed the connection (or said it would: 421, RFC 5321 section 3.8)."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code == 421 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    # a reset or broken pipe; a timeout is a relay that is slow, not gone
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classified(code: int, text: Any) -> Exception:
    message = f"relay answered {code} {_text(text)}".strip()
    return PermanentFailure(message) if 500 <= code < 600 else TemporaryFailure(message)


class MaildirTransport:
    """No relay configured: every mail becomes a file in the outbox Maildir, which only the
    gateway's user can read (0700 folders, 0600 files: the mails carry reply addresses and
    signed links)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            for sub in ("tmp", "new", "cur"):  # a Maildir is these three folders
                private_dir(self.path / sub)
            # delivered as maildir(5) says: written and synced in tmp/, then renamed into new/
            name = _maildir_name()
            write_private(self.path / "tmp" / name, self.path / "new" / name, raw)
        except OSError as exc:
            raise TemporaryFailure(f"maildir {self.path}: {exc}") from None

    def close(self) -> None:
        """Nothing is held open between mails."""


def _maildir_name() -> str:
    """A name no other delivery takes: time, process, a random part, and the host (with the
    `/` and `:` that may not appear in it escaped, as maildir(5) asks)."""
    now = time.time_ns()
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return (f"{now // 10**9}.M{now // 1000 % 10**6}P{os.getpid()}R{secrets.token_hex(8)}"
            f".{host}")


def transport_for(settings: Settings) -> Transport:
    """The configured relay, or the outbox Maildir when there is none."""
    relay = settings.smtp_relay
    if relay is None:
        return MaildirTransport(settings.outbox_maildir)
    return RelayTransport(relay.host, relay.port, user=settings.smtp_relay_user,
                          password=settings.smtp_relay_password,
                          starttls=settings.smtp_relay_starttls,
                          local_hostname=settings.mail_domain)
