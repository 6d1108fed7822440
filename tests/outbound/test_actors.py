"""The outbound actors: the sweep hands rows out a few to a message, and a fault in one row
never holds up the rows that share its message."""

from __future__ import annotations

from datetime import datetime

import pytest
from dramatiq import Message, Worker
from dramatiq.brokers.stub import StubBroker

from gateway.services.runtime import Runtime
from outbound.actors import DELIVER_CHUNK, declare_actors
from tests.outbound.test_relay import add_mails
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import open_refund, outbox, seed_order, states


def stub_broker() -> StubBroker:
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def test_the_sweep_hands_out_due_rows_a_few_to_a_message(relay_runtime: Runtime) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    add_mails(relay_runtime, 2 * DELIVER_CHUNK)  # 2 + 16 rows
    broker = stub_broker()
    actors = declare_actors(broker, relay_runtime)
    actors.sweep_outbox.fn()
    queue = broker.queues[actors.deliver.queue_name]
    sent = [queue.get_nowait() for _ in range(queue.qsize())]
    carried = [Message.decode(m).args[0] for m in sent]
    assert [len(ids) for ids in carried] == [DELIVER_CHUNK, DELIVER_CHUNK, 2]
    assert sorted(i for ids in carried for i in ids) == sorted(r.id for r in outbox(relay_runtime))


def test_a_fault_in_one_row_leaves_the_others_of_its_message_delivered(
        relay_runtime: Runtime, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    first, second = sorted(states(relay_runtime))
    broker = stub_broker()
    actors = declare_actors(broker, relay_runtime)
    real = actors.deliverer.deliver

    def database_went_away(outbox_id: int, lease: datetime | None = None) -> str:
        if outbox_id == first:
            raise ConnectionError("database went away")
        return real(outbox_id, lease)

    monkeypatch.setattr(actors.deliverer, "deliver", database_went_away)
    actors.deliver.send([first, second])
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(actors.deliver.queue_name, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert states(relay_runtime) == {first: "pending", second: "sent"}
    assert len(smtp_sink.messages) == 1
