"""The mail network of the loop test, ignoring every header a loop could be seen by: mail for
a gateway's domain is handed on with only From, To and Subject kept (no Auto-Submitted, no
X-Ticketgw-Loop, no References: a forwarder that rewrites everything), and mail for anybody
else is answered by an auto-responder, to its Reply-To, every time."""

from __future__ import annotations

import queue
import smtplib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ticketgw.testing.smtp_sink import SmtpSink


@dataclass(frozen=True)
class Hop:
    """One mail the network carried to a gateway, and the gateway's answer."""

    sender_domain: str  # who wrote it: a gateway's domain, or the responder's
    recipient: str
    message_id: str
    code: int


class _Handler:
    def __init__(self, network: LoopNetwork) -> None:
        self.network = network

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        for rcpt in envelope.rcpt_tos:
            self.network.accept(rcpt, bytes(raw))
        return "250 2.0.0 OK"


class LoopNetwork(SmtpSink):
    """A real SMTP server (the gateways' relay); what it accepts is passed on in a thread
    of its own. `gateways` maps a mail domain to that gateway's SMTP port."""

    def __init__(self, gateways: Mapping[str, int], responder_domain: str) -> None:
        super().__init__()
        self.gateways = dict(gateways)
        self.responder_domain = responder_domain
        self.hops: list[Hop] = []
        self.carried: dict[tuple[str, str], int] = {}  # (from gateway, to address): mails
        self._work: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self._busy = 0
        self._lock = threading.Lock()
        self._passer = threading.Thread(target=self._pass_on, name="loop-network", daemon=True)
        self._passer.start()

    def _protocol(self) -> SMTP:
        return SMTP(_Handler(self), hostname="relay.test", enable_SMTPUTF8=True)

    def accept(self, rcpt: str, raw: bytes) -> None:
        with self._lock:
            self._busy += 1
        self._work.put((rcpt, raw))

    @property
    def idle(self) -> tuple[bool, int]:
        """(nothing accepted and not yet passed on, hops so far)."""
        with self._lock:
            return self._busy == 0, len(self.hops)

    def close(self) -> None:
        self._work.put(None)
        self._passer.join(10)
        self.stop()

    def _pass_on(self) -> None:
        while (item := self._work.get()) is not None:
            rcpt, raw = item
            try:
                self._one(rcpt, raw)
            finally:
                with self._lock:
                    self._busy -= 1

    def _one(self, rcpt: str, raw: bytes) -> None:
        original = BytesParser(policy=policy.default).parsebytes(raw)
        author = str(original["From"].addresses[0].addr_spec)
        with self._lock:
            key = (author.rpartition("@")[2], rcpt)
            self.carried[key] = self.carried.get(key, 0) + 1
        domain = rcpt.rpartition("@")[2].lower()
        if domain in self.gateways:
            mail = _stripped(original, author, rcpt)
        elif domain == self.responder_domain:
            mail = _auto_reply(original, rcpt)
        else:
            return  # an address nobody reads: the mail ends here
        self._deliver(mail)

    def _deliver(self, mail: EmailMessage) -> None:
        rcpt = str(mail["To"])
        domain = rcpt.rpartition("@")[2].lower()
        sender = str(mail["From"])
        try:
            with smtplib.SMTP("127.0.0.1", self.gateways[domain], timeout=30,
                              local_hostname="relay.test") as client:
                client.sendmail(sender, [rcpt], mail.as_bytes(policy=policy.SMTP))
                code = 250
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
        with self._lock:
            self.hops.append(Hop(sender.rpartition("@")[2], rcpt,
                                 str(mail["Message-ID"]).strip("<>"), code))


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return str(part.get_content())[:2000] if part is not None else ""


def _stripped(original: EmailMessage, author: str, rcpt: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = author
    mail["To"] = rcpt
    mail["Subject"] = str(original.get("Subject", ""))
    mail["Message-ID"] = make_msgid(domain="relay.test")
    mail.set_content(_text(original))
    return mail


def _auto_reply(original: EmailMessage, me: str) -> EmailMessage:
    """Answers everything, to Reply-To when there is one: no Auto-Submitted, no
    In-Reply-To, a subject that does not say out-of-office."""
    to: Any = original.get("Reply-To") or original["From"]
    mail = EmailMessage()
    mail["From"] = me
    mail["To"] = str(to.addresses[0].addr_spec)
    mail["Subject"] = f"Re: {original.get('Subject', '')}"
    mail["Message-ID"] = make_msgid(domain="responder.test")
    mail.set_content(f"Thank you for your message. I will answer it when I can.\n\n"
                     f"> {_text(original)[:200]}")
    return mail
