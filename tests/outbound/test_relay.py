"""The relay connection: kept between mails, one transaction a mail, reopened when it died."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer
from store.models import OutboxMail
from tests.support import wait_until
from ticketgw.broker import start_worker
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink, _Handler
from ticketgw.testing.story import open_refund, outbox, seed_order


class _WatchedSMTP(SMTP):
    def __init__(self, sink: WatchedSink) -> None:
        super().__init__(_Handler(sink), hostname="sink.localhost", enable_SMTPUTF8=True,
                         timeout=sink.idle_timeout)
        self.sink = sink

    def connection_made(self, transport: object) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.sink._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._lost(self)
        super().connection_lost(error)

    async def smtp_QUIT(self, arg: str) -> None:
        self.sink._quit()
        await super().smtp_QUIT(arg)


class WatchedSink(SmtpSink):
    """The SMTP sink, also counting connections and QUITs; it can drop every open connection
    the way a relay that restarts does."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._open: list[_WatchedSMTP] = []
        self.connections = 0
        self.quits = 0
        self.idle_timeout = 300.0  # seconds; for the connections opened from now on

    def _protocol(self) -> SMTP:
        return _WatchedSMTP(self)

    def _opened(self, server: _WatchedSMTP) -> None:
        with self._lock:
            self._open.append(server)
            self.connections += 1

    def _lost(self, server: _WatchedSMTP) -> None:
        with self._lock:
            self._open.remove(server)

    def _quit(self) -> None:
        with self._lock:
            self.quits += 1

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, and wait until they are gone."""
        def close_all() -> None:
            with self._lock:
                servers = list(self._open)
            for server in servers:
                if server.transport is not None:
                    server.transport.close()

        self._loop.call_soon_threadsafe(close_all)
        wait_until(lambda: self.open_connections == 0, timeout=5,
                   message="server side closed its connections")


@pytest.fixture
def sink() -> Iterator[WatchedSink]:
    watched = WatchedSink()
    watched.start()
    try:
        yield watched
    finally:
        watched.stop()


@pytest.fixture
def relay(migrated_url: str, tmp_path: Path, sink: WatchedSink) -> Iterator[Runtime]:
    runtime = make_runtime(migrated_url, tmp_path, smtp_relay=sink.address)
    yield runtime
    runtime.close()


def add_mails(runtime: Runtime, count: int) -> list[int]:
    """`count` more pending copies of the vendor's mail, each to an address of its own."""
    with runtime.sessions.begin() as session:
        template = session.execute(select(OutboxMail).where(OutboxMail.party == "vendor")
                                   ).scalars().first()
        assert template is not None
        rows = [OutboxMail(ticket_id=template.ticket_id, order_id=template.order_id,
                           event=template.event, party="vendor", recipient=f"v{i}@example.org",
                           locale="en", upto_message_id=template.upto_message_id,
                           state="pending", attempts=0, created_at=template.created_at,
                           next_attempt_at=template.created_at)
                for i in range(count)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def pending_ids(runtime: Runtime) -> list[int]:
    return [row.id for row in outbox(runtime) if row.state == "pending"]


def test_many_mails_share_one_connection_and_never_each_others_envelope(
        relay: Runtime, sink: WatchedSink) -> None:
    seed_order(relay)
    open_refund(relay)
    add_mails(relay, 10)
    deliverer = Deliverer(relay)
    ids = pending_ids(relay)
    assert [deliverer.deliver(i) for i in ids] == ["sent"] * 12
    mails = sink.wait_for(12)
    assert sink.connections == 1
    assert sink.open_connections == 1  # kept for the next mail
    by_id = {row.message_id: row for row in outbox(relay)}
    for mail in mails:
        row = by_id[mail.message["Message-ID"]]
        assert mail.rcpt_tos == (row.recipient,)
        assert mail.message["To"].addresses[0].addr_spec == row.recipient
    deliverer.close()
    wait_until(lambda: sink.open_connections == 0, timeout=5, message="connection closed")
    assert sink.quits == 1


@pytest.mark.parametrize("drop", ["restart", "idle timeout"])
def test_relay_that_dropped_the_kept_connection_gets_the_next_mail_over_a_new_one(
        relay: Runtime, sink: WatchedSink, drop: str) -> None:
    seed_order(relay)
    open_refund(relay)
    first, second = pending_ids(relay)
    deliverer = Deliverer(relay)
    if drop == "idle timeout":
        sink.idle_timeout = 0.5
    assert deliverer.deliver(first) == "sent"
    if drop == "restart":
        sink.drop_connections()
    else:
        wait_until(lambda: sink.open_connections == 0, timeout=10, message="idle timeout")
    assert deliverer.deliver(second) == "sent"  # reconnected at once: not a retry
    assert len(sink.wait_for(2)) == 2
    assert sink.connections == 2
    assert {row.id: (row.state, row.attempts) for row in outbox(relay)} == {
        first: ("sent", 1), second: ("sent", 1)}
    deliverer.close()


def test_failure_after_the_content_went_out_is_not_resent_at_once(
        relay: Runtime, sink: WatchedSink) -> None:
    """The relay may have the mail then: it waits for the back-off, never a second send now."""
    seed_order(relay)
    open_refund(relay)
    first, second = pending_ids(relay)
    deliverer = Deliverer(relay)
    assert deliverer.deliver(first) == "sent"
    sink.go_down("DATA", "421 4.3.2 Shutting down")
    assert deliverer.deliver(second) == "retry"
    assert sink.refused == 1  # one transaction, over the kept connection
    assert sink.connections == 1
    row = next(r for r in outbox(relay) if r.id == second)
    assert (row.state, row.attempts) == ("pending", 1) and "421" in (row.last_error or "")
    sink.go_up()
    deliverer.close()


def test_worker_threads_quit_their_connections_when_the_worker_stops(
        relay: Runtime, sink: WatchedSink) -> None:
    seed_order(relay)
    running = start_worker(relay, threads=2, scheduler=True, outbox_period=0.05)
    try:
        open_refund(relay)
        add_mails(relay, 6)
        wait_until(lambda: len(sink.messages) == 8, timeout=20, message="first mails")
        sink.drop_connections()
        add_mails(relay, 6)
        wait_until(lambda: len(sink.messages) == 14, timeout=20, message="mails after a drop")
        assert 2 <= sink.connections <= 4  # one a thread before the drop, one a thread after
        kept = sink.open_connections
        assert kept >= 1
    finally:
        running.stop()
    wait_until(lambda: sink.open_connections == 0, timeout=10, message="connections closed")
    assert sink.quits == kept
    assert {(row.state, row.attempts) for row in outbox(relay)} == {("sent", 1)}
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == sorted(
        row.recipient for row in outbox(relay))
