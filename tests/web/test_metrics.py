"""`/metrics` counts what really happened: mail through a real SMTP listener, a worker
delivering to a real SMTP sink, deadlines swept; and the counts of several processes sharing
the metrics directory add up on one scrape."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from gateway.domain.clock import FrozenClock
from gateway.domain.facts import Role, TicketType
from gateway.services import metrics
from gateway.services.runtime import Runtime
from inbound import intake
from outbound.sweeps import sweep_deadlines
from store.db import make_sessions
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    STRANGER,
    SmtpServer,
    make_mail,
    seed,
    send,
)
from ticketgw.broker import start_embedded
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.services import wait_until
from ticketgw.testing.smtp_sink import SmtpSink
from web.app import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    """Counts of this test only (they are per process: other tests count too)."""
    metrics.use_memory()
    yield
    metrics.use_memory()


def scrape(runtime: Runtime) -> Samples:
    with TestClient(create_app(runtime)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_mail_in_and_out_moves_the_counters(migrated_url: str, tmp_path: Path,
                                            smtp_sink: SmtpSink) -> None:
    runtime = make_runtime(migrated_url, tmp_path, smtp_relay=smtp_sink.address)
    world = seed(runtime)
    number = world.open()  # opened: a mail to the customer and one to the vendor
    smtp = SmtpServer(runtime)
    try:
        for text in ("First answer.", "Second answer.", "Third answer."):
            raw = make_mail(body=text)
            assert send(smtp, raw, rcpt=world.reply_address(number, Role.CUSTOMER))[0] == 250
        stranger = make_mail(sender=STRANGER, subject=f"Re: [Ticket #{number}]", body="#close")
        assert send(smtp, stranger, rcpt=f"support@{DOMAIN}", mail_from=STRANGER)[0] == 550
        auto = make_mail(subject="Automatic reply", headers={"Auto-Submitted": "auto-replied"})
        assert send(smtp, auto, rcpt=world.reply_address(number, Role.CUSTOMER))[0] == 250
    finally:
        smtp.stop()
    worker = start_embedded(runtime)
    try:
        # opened and three replies, each mailed to both parties
        wait_until(lambda: value(scrape(runtime), "ticketgw_deliveries_total",
                                 result="sent") >= 8, timeout=60, message="8 mails sent")
    finally:
        worker.stop()
    samples = scrape(runtime)
    runtime.close()
    assert len(smtp_sink.messages) == 8
    received = {d: value(samples, "ticketgw_mails_received_total", listener="smtp", decision=d)
                for d in ("applied", "ignored", "rejected", "failed")}
    assert received == {"applied": 3, "ignored": 1, "rejected": 1, "failed": 0}
    assert value(samples, "ticketgw_mail_loops_stopped_total", reason="auto_reply") == 1
    assert value(samples, "ticketgw_smtp_answers_total", code="250") == 4
    assert value(samples, "ticketgw_smtp_answers_total", code="550") == 1
    assert value(samples, "ticketgw_smtp_answers_total", code="451") == 0
    assert value(samples, "ticketgw_intake_seconds_count") == 5
    assert value(samples, "ticketgw_intake_batch_size_sum") == 5
    assert value(samples, "ticketgw_deliveries_total", result="sent") == 8
    assert value(samples, "ticketgw_delivery_seconds_count") == 8
    assert value(samples, "ticketgw_deliveries_total", result="failed") == 0
    assert value(samples, "ticketgw_outbox_mails", state="pending") == 0
    assert value(samples, "ticketgw_open_tickets", type="tech_support") == 1
    assert value(samples, "ticketgw_worker_errors_total", task="deliver") == 0
    assert value(samples, "ticketgw_database_up") == 1


def test_a_mail_taken_alone_is_counted_by_its_listener(runtime: Runtime) -> None:
    """What the IMAP poller and `mail replay` call: intake of one mail, not a batch."""
    world = seed(runtime)
    number = world.open()
    outcome = intake.receive(runtime, make_mail(), envelope_from=CUSTOMER, channel="imap",
                             recipient=world.reply_address(number, Role.CUSTOMER))
    assert outcome.state == "applied"
    samples = scrape(runtime)
    assert value(samples, "ticketgw_mails_received_total", listener="imap",
                 decision="applied") == 1
    assert value(samples, "ticketgw_mails_received_total", listener="smtp",
                 decision="applied") == 0


def test_deadline_sweep_counts_what_it_executed(runtime: Runtime) -> None:
    world = seed(runtime)
    world.open(TicketType.REFUND)  # a customer's refund: due in 24 business hours
    samples = scrape(runtime)
    assert value(samples, "ticketgw_deadlines_overdue") == 0
    assert value(samples, "ticketgw_next_deadline_seconds") == 24 * 3600
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(timedelta(days=2))
    assert value(scrape(runtime), "ticketgw_deadlines_overdue") == 1
    sweep_deadlines(runtime)
    samples = scrape(runtime)
    assert value(samples, "ticketgw_deadlines_due_total") == 1
    assert value(samples, "ticketgw_deadlines_executed_total", kind="processed") == 1
    assert value(samples, "ticketgw_deadlines_failed_total") == 0
    assert value(samples, "ticketgw_deadlines_overdue") == 0


def test_counts_still_go_out_when_the_database_does_not_answer(runtime: Runtime) -> None:
    metrics.mail_received("smtp", "failed")
    gone = create_engine("sqlite:////nonexistent-dir/ticketgw/none.db")
    samples = scrape(dataclasses.replace(runtime, engine=gone, sessions=make_sessions(gone)))
    assert value(samples, "ticketgw_database_up") == 0
    assert value(samples, "ticketgw_mails_received_total", listener="smtp",
                 decision="failed") == 1
    assert ("ticketgw_open_tickets", (("type", "refund"),)) not in samples


# --- several processes, one directory ---------------------------------------------------------

def _count_mails(count: int, done: Event | None = None) -> None:
    for _ in range(count):
        metrics.mail_received("smtp", "applied")
    metrics.mail_answered("250 2.0.0 threaded", 0.01)
    metrics.intake_restarted()
    if done is not None:
        done.wait(30)  # alive until told


def test_two_processes_count_and_one_scrape_sums_them(runtime: Runtime, tmp_path: Path) -> None:
    metrics.use_directory(tmp_path / "metrics")
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_count_mails, args=(n,)) for n in (2, 3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
        metrics.process_exited(child.pid)
    samples = scrape(runtime)  # the parent counted nothing: the sums are the children's
    assert value(samples, "ticketgw_mails_received_total", listener="smtp",
                 decision="applied") == 5
    assert value(samples, "ticketgw_smtp_answers_total", code="250") == 2
    assert value(samples, "ticketgw_intake_seconds_count") == 2
    assert value(samples, "ticketgw_intake_restarts_total") == 2
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert {c.pid for c in children} <= pids


def test_a_first_start_forgets_old_counts_and_a_later_one_keeps_the_dead(
        tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    fork = multiprocessing.get_context("fork")
    metrics.use_directory(folder)
    dead = fork.Process(target=_count_mails, args=(4,))
    dead.start()
    dead.join(30)
    done = fork.Event()
    running = fork.Process(target=_count_mails, args=(1, done))
    running.start()
    try:
        wait_until(lambda: _applied(metrics.scrape()) == 5, timeout=30,
                   message="the running child counted")
        # a restart beside a process still running: the dead one's counts stay in the sums
        metrics.use_memory()
        metrics.use_directory(folder)
        assert os.path.exists(folder / f"counter_{dead.pid}.db")
        assert _applied(metrics.scrape()) == 5
    finally:
        done.set()
        running.join(30)
    metrics.use_memory()

    # nobody who wrote there is alive: a new run starts from zero
    metrics.use_directory(folder)
    assert not os.path.exists(folder / f"counter_{dead.pid}.db")
    assert _applied(metrics.scrape()) == 0


def _applied(text: bytes) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == "ticketgw_mails_received_total" and sample.labels == {
                    "listener": "smtp", "decision": "applied"}:
                return sample.value
    raise AssertionError("no ticketgw_mails_received_total sample")
