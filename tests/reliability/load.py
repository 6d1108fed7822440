"""Concurrent SMTP senders that behave like a sending MTA: a 4xx answer, a timeout or a lost
connection means "try again" (perhaps at the other listener), a 250 means the mail is ours
to keep, a 5xx is final. Every answer is recorded with when it came."""

from __future__ import annotations

import random
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, func, select

from store.models import Message
from tests.inbound.conftest import crlf, make_mail

CONNECTION_LOST = 0  # the code recorded when no answer came (refused, reset, timeout)


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the transaction began
    answered: float  # ... when its last answer (or the error) came
    code: int


@dataclass
class Mail:
    """One mail a sender must get accepted: the same bytes on every try."""

    message_id: str
    mail_from: str
    rcpt: str
    raw: bytes
    answers: list[Answer] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return any(a.code == 250 for a in self.answers)

    @property
    def refused(self) -> bool:
        return any(500 <= a.code < 600 for a in self.answers)


def replies(count: int, rcpt: Callable[[int], str], prefix: str) -> list[Mail]:
    """`count` replies, each from an address of its own (the per-sender rate limit is not
    what these tests are about) and with a Message-ID of its own: the dedupe key."""
    mails = []
    for i in range(count):
        message_id = f"{prefix}-{i}@load.example"  # as stored: without the angle brackets
        sender = f"ann.{prefix}.{i}@example.org"
        raw = crlf(make_mail(sender=sender, to=rcpt(i), subject=f"Re: note {i}",
                             body=f"Load note {i} from {prefix}.", message_id=f"<{message_id}>"))
        mails.append(Mail(message_id, sender, rcpt(i), raw))
    return mails


class Senders:
    """`threads` senders working through `mails` until each is accepted or refused for good;
    `ports()` says where listeners are (one is picked at random for each connection)."""

    def __init__(self, mails: Sequence[Mail], ports: Callable[[], Sequence[int]], *,
                 threads: int = 8, timeout: float = 10.0, give_up_after: float = 240.0,
                 seed: int = 0) -> None:
        self.mails = list(mails)
        self.ports = ports
        self.timeout = timeout
        self.give_up_at = time.monotonic() + give_up_after
        self._next = 0
        self._done = 0
        self._cond = threading.Condition()
        self._rng = random.Random(seed)
        self._threads = [threading.Thread(target=self._run, args=(random.Random(seed + i),),
                                          name=f"sender-{i}", daemon=True)
                         for i in range(threads)]

    def start(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a sender is still sending at its deadline"

    @property
    def done(self) -> int:
        """Mails finished (accepted or refused) so far."""
        with self._cond:
            return self._done

    def wait_done(self, count: int, timeout: float) -> bool:
        """Until `count` mails are finished, or every sender stopped; False at the deadline."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._done >= count or not any(t.is_alive() for t in self._threads),
                timeout)

    def _take(self) -> Mail | None:
        with self._cond:
            if self._next >= len(self.mails):
                return None
            self._next += 1
            return self.mails[self._next - 1]

    def _finished(self) -> None:
        with self._cond:
            self._done += 1
            self._cond.notify_all()

    def _run(self, rng: random.Random) -> None:
        client: smtplib.SMTP | None = None
        while (mail := self._take()) is not None:
            pause = 0.02
            while not (mail.acked or mail.refused):
                if time.monotonic() > self.give_up_at:
                    return  # the test sees it: a mail neither accepted nor refused
                if client is None:
                    client = self._connect(mail, rng)
                if client is not None:
                    client = self._send(client, mail)
                if not (mail.acked or mail.refused):
                    time.sleep(pause)  # a sender's back-off before it tries again
                    pause = min(pause * 2, 0.4)
            self._finished()
        if client is not None:
            client.close()

    def _connect(self, mail: Mail, rng: random.Random) -> smtplib.SMTP | None:
        started = time.monotonic()
        try:
            client = smtplib.SMTP("127.0.0.1", rng.choice(list(self.ports())),
                                  timeout=self.timeout, local_hostname="load.example")
            client.ehlo()
            return client
        except (OSError, smtplib.SMTPException):
            mail.answers.append(Answer(started, time.monotonic(), CONNECTION_LOST))
            return None

    def _send(self, client: smtplib.SMTP, mail: Mail) -> smtplib.SMTP | None:
        """One transaction; the connection to use next (None: it is gone)."""
        started = time.monotonic()
        try:
            code, _ = client.mail(mail.mail_from)
            if code == 250:
                code, _ = client.rcpt(mail.rcpt)
            if code == 250:
                code, _ = client.data(mail.raw)
            elif code < 500 and code != 421:  # 421: the server closes the connection
                client.rset()
        except (OSError, smtplib.SMTPException):
            mail.answers.append(Answer(started, time.monotonic(), CONNECTION_LOST))
            client.close()
            return None
        mail.answers.append(Answer(started, time.monotonic(), code))
        if code == 421:
            client.close()
            return None
        return client


@dataclass(frozen=True)
class Count:
    """What became of the mails a test sent: the line the fault suite reports."""

    sent: int
    acknowledged: int
    stored: int
    duplicates: int
    lost: int

    def line(self) -> str:
        return (f"sent {self.sent}, acknowledged {self.acknowledged}, stored {self.stored}, "
                f"duplicates {self.duplicates}, lost {self.lost}")


def stored_copies(engine: Engine, message_ids: Sequence[str]) -> dict[str, int]:
    """How many messages on tickets carry each of these Message-IDs (absent: none)."""
    query = (select(Message.message_id, func.count()).where(
        Message.message_id.in_(bindparam("ids", expanding=True)))
        .group_by(Message.message_id))
    copies: dict[str, int] = {}
    with engine.connect() as conn:
        for start in range(0, len(message_ids), 500):
            for message_id, n in conn.execute(query, {"ids": message_ids[start:start + 500]}):
                copies[str(message_id)] = int(n)
    return copies


def count_stored(engine: Engine, mails: Sequence[Mail]) -> Count:
    """Each acknowledged mail must be a message on its ticket exactly once (Message-ID)."""
    copies = stored_copies(engine, [m.message_id for m in mails])
    acked = [m for m in mails if m.acked]
    stored = [m for m in acked if copies.get(m.message_id, 0) >= 1]
    return Count(sent=len(mails), acknowledged=len(acked), stored=len(stored),
                 duplicates=sum(max(0, n - 1) for n in copies.values()),
                 lost=len(acked) - len(stored))
