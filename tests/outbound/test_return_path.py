"""Who a mail says it is: a signed return address per mail, and a random Message-ID per row.

Read at a real SMTP sink (the relay), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from gateway.domain.facts import Role
from gateway.services.runtime import Runtime
from outbound.deliver import Deliverer
from store.models import OutboxMail
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import open_refund, outbox, seed_order


def deliver_pending(runtime: Runtime) -> list[str]:
    """Deliver every pending row now, in this thread; their outcomes in row order."""
    with runtime.sessions() as session:
        ids = list(session.execute(select(OutboxMail.id).where(OutboxMail.state == "pending")
                                   .order_by(OutboxMail.id)).scalars())
    deliverer = Deliverer(runtime)
    try:
        return [deliverer.deliver(outbox_id) for outbox_id in ids]
    finally:
        deliverer.close()


def test_the_envelope_sender_is_a_signed_return_address_of_that_mail(
        relay_runtime: Runtime, smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    assert deliver_pending(relay_runtime) == ["sent", "sent"]
    rows = {row.recipient: row for row in outbox(relay_runtime)}
    senders = set()
    for mail in smtp_sink.wait_for(2):
        (recipient,) = mail.rcpt_tos
        row = rows[recipient]
        local, at, domain = mail.mail_from.partition("@")
        assert local.startswith("bounce+") and domain == relay_runtime.settings.mail_domain
        claim = relay_runtime.tokens.read_bounce_token(local.removeprefix("bounce+"))
        assert (claim.subject_id, claim.party) == (row.id, Role(row.party))
        assert len(local) <= 64  # RFC 5321 section 4.5.3.1.1
        senders.add(mail.mail_from)
        # the reply address stays the ticket's; only the envelope names the mail
        assert mail.message["Reply-To"].startswith("reply+")
    assert len(senders) == 2


def test_two_installs_and_two_rows_never_share_a_message_id(
        make_relay_runtime: Callable[..., Runtime], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    first = make_relay_runtime()
    # the same secret, domain, clock and row ids: everything a Message-ID could be made from
    second = make_runtime(f"sqlite:///{tmp_path / 'second.db'}", tmp_path / "second",
                          smtp_relay=smtp_sink.address)
    try:
        for runtime in (first, second):
            for receipt in ("ABCD1234", "EFGH5678"):
                seed_order(runtime, receipt=receipt)
                open_refund(runtime, receipt=receipt)
        written = [row.message_id for runtime in (first, second) for row in outbox(runtime)]
        assert all(written) and len(set(written)) == len(written) == 8
        assert not any("outbox-" in mid for mid in written if mid)
        for runtime in (first, second):
            assert deliver_pending(runtime) == ["sent"] * 4
    finally:
        second.close()
    sent = [str(mail.message["Message-ID"]) for mail in smtp_sink.wait_for(8)]
    assert sorted(sent) == sorted(m for m in written if m)


def test_a_resend_of_a_row_is_byte_identical_with_the_id_written_with_it(
        relay_runtime: Runtime, smtp_sink: SmtpSink) -> None:
    seed_order(relay_runtime)
    open_refund(relay_runtime)
    written = {row.id: row.message_id for row in outbox(relay_runtime)}
    assert all(written.values())  # fixed when the change wrote the row, before any render
    smtp_sink.go_down("DATA")  # the relay takes the whole mail, then fails it
    assert deliver_pending(relay_runtime) == ["retry", "retry"]
    stored = {row.id: row.raw for row in outbox(relay_runtime)}
    smtp_sink.go_up()
    relay_runtime.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    assert deliver_pending(relay_runtime) == ["sent", "sent"]
    by_id = {row.message_id: row.id for row in outbox(relay_runtime)}
    for mail in smtp_sink.wait_for(2):
        outbox_id = by_id[str(mail.message["Message-ID"])]
        assert mail.message["Message-ID"] == written[outbox_id]
        assert mail.raw == stored[outbox_id]
