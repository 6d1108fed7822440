"""Group commit: mails taken together in one transaction behave as if each came alone, in
order; a mail that fails takes none of the others with it. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from gateway.domain.facts import Role
from inbound import batching, intake
from inbound.batching import IntakeQueue
from inbound.intake import Incoming, Outcome, receive_many
from store.models import InboundMail
from tests.inbound.conftest import (
    CUSTOMER,
    DOMAIN,
    RECEIPT,
    SmtpServer,
    World,
    crlf,
    make_mail,
)


@pytest.fixture
def commits(world: World) -> Iterator[list[int]]:
    """One entry a database commit."""
    seen: list[int] = []

    def count(_connection: object) -> None:
        seen.append(1)

    event.listen(world.runtime.engine, "commit", count)
    yield seen
    event.remove(world.runtime.engine, "commit", count)


def _reply(world: World, number: int, body: str, *, party: Role = Role.CUSTOMER,
           message_id: str | None = None, sender: str = CUSTOMER) -> Incoming:
    return Incoming(make_mail(sender=sender, body=body, message_id=message_id), sender,
                    world.reply_address(number, party))


def test_a_batch_is_one_commit_and_each_mail_sees_the_ones_before(world: World,
                                                                 commits: list[int]) -> None:
    number = world.open()
    first = _reply(world, number, "It stops at 80 percent.", message_id="<b-1@example.org>")
    batch = [
        first,
        first,  # the same mail delivered twice: the second is a duplicate
        _reply(world, number, "#close\nSolved, thanks!"),
        _reply(world, number, "It broke again."),  # the ticket is closed now: a follow-up
        Incoming(make_mail(subject=f"cancel {RECEIPT}", body="stop it"), CUSTOMER,
                 f"cancel@{DOMAIN}"),  # refused: not a subscription; nothing of it stays
    ]
    commits.clear()
    outcomes = receive_many(world.runtime, batch)
    assert len(commits) == 1
    assert [o.state for o in outcomes] == ["applied", "duplicate", "applied", "applied",
                                           "rejected"]
    assert outcomes[0].reply == f"250 2.0.0 threaded to #{number}"
    assert outcomes[4].reply.startswith("550 5.7.0 this order is not a subscription")
    follow_up = outcomes[3].ticket_number
    assert follow_up not in (None, number)
    view = world.ticket(number)
    assert view["status"] == "closed"
    assert [m["text"] for m in view["messages"]] == [  # type: ignore[attr-defined]
        "first message", "It stops at 80 percent.", "Solved, thanks!"]
    assert world.ticket(follow_up)["messages"][0]["text"] == "It broke again."  # type: ignore[index]
    with world.runtime.sessions() as session:
        rows = session.execute(select(InboundMail).order_by(InboundMail.id)).scalars().all()
        assert [r.state for r in rows] == ["applied", "ignored", "applied", "applied",
                                           "rejected"]
        assert [r.id for r in rows] == [o.inbound_id for o in outcomes]


def test_a_failing_mail_is_parked_and_the_others_are_kept(world: World,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    number = world.open()
    real = intake.apply

    def apply(*args: object, **kwargs: object) -> object:
        mail = args[2]
        if "boom" in mail.text:  # type: ignore[attr-defined]
            raise RuntimeError("a bug")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(intake, "apply", apply)
    outcomes = receive_many(world.runtime, [
        _reply(world, number, "before"), _reply(world, number, "boom"),
        _reply(world, number, "after")])
    assert [o.state for o in outcomes] == ["applied", "failed", "applied"]
    assert outcomes[1].reply.startswith("451 4.3.0") and "bug" not in outcomes[1].reply
    texts = [m["text"] for m in world.ticket(number)["messages"]]  # type: ignore[attr-defined]
    assert texts == ["first message", "before", "after"]
    monkeypatch.setattr(intake, "apply", real)
    assert [o.state for o in intake.replay(world.runtime)] == ["applied"]
    assert world.ticket(number)["messages"][-1]["text"] == "boom"  # type: ignore[index]


def test_concurrent_clients_are_all_answered_and_threaded(world: World) -> None:
    number = world.open()
    address = world.reply_address(number, Role.CUSTOMER)
    server = SmtpServer(world.runtime, rate=(1000, 600))  # 40 mails from one sender
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        with server.client() as c:
            for i in range(5):
                c.mail(CUSTOMER)
                c.rcpt(address)
                answer = c.data(crlf(make_mail(body=f"reply {k}-{i}")))
                with lock:
                    answers.append(answer)

    try:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()
    assert [code for code, _ in answers] == [250] * 40
    texts = {m["text"] for m in world.ticket(number)["messages"]}  # type: ignore[attr-defined]
    assert texts >= {f"reply {k}-{i}" for k in range(8) for i in range(5)}


def test_mail_that_arrives_while_waiting_to_write_joins_the_batch(world: World,
                                                                 commits: list[int]) -> None:
    number = world.open()
    late = [_reply(world, number, "second"), _reply(world, number, "third")]
    asked: list[int] = []

    def more() -> list[Incoming]:
        asked.append(1)
        return late

    commits.clear()
    outcomes = receive_many(world.runtime, [_reply(world, number, "first")], more)
    assert asked == [1] and len(commits) == 1
    assert [o.state for o in outcomes] == ["applied"] * 3
    texts = [m["text"] for m in world.ticket(number)["messages"]]  # type: ignore[attr-defined]
    assert texts == ["first message", "first", "second", "third"]


def test_a_lone_mail_waits_for_nothing_and_a_busy_batch_waits_for_company(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit delay: alone, a mail is taken at once; under load a batch waits (LINGER)
    until as many mails as open connections have come. LINGER is made 60 s here: either
    wait below would fail its 10 s deadline if the wait were not cut short."""
    batches: list[int] = []

    def taken(runtime: object, mails: list[Incoming], more: object = None) -> list[Outcome]:
        extra = list(more()) if callable(more) else []
        batches.append(len(mails) + len(extra))
        return [Outcome("applied", "250 2.0.0 ok", "", None, None)] * batches[-1]

    monkeypatch.setattr(batching, "receive_many", taken)
    monkeypatch.setattr(batching, "LINGER", 60.0)
    intake = IntakeQueue(None, 1, senders=lambda: 3)  # type: ignore[arg-type]
    mail = Incoming(b"Subject: x\r\n\r\nx\r\n", CUSTOMER, f"support@{DOMAIN}")

    async def scenario() -> None:
        await asyncio.wait_for(intake.submit(mail), 10)  # alone: at once
        intake._busy = True  # as after a batch that had company
        first = intake.submit(mail)
        rest = [intake.submit(mail), intake.submit(mail)]
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    try:
        asyncio.run(scenario())
    finally:
        intake.stop()
    assert batches == [1, 3]
