"""Every broker delivers a refund's mail to a real SMTP server, both parties, their locales."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from email.headerregistry import Address

import pytest

from gateway.domain.facts import Role
from gateway.services.runtime import Runtime
from store.models import OutboxMail
from tests.support import unique_name, wait_until
from ticketgw.broker import BrokerSetup, Running, build_broker, start_worker
from ticketgw.testing.smtp_sink import ReceivedMail, SmtpSink
from ticketgw.testing.story import CUSTOMER, VENDOR, open_refund, outbox, seed_order, text_part


def _cleanup_redis(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    namespace = unique_name("ticketgw_t_")
    if request.param == "embedded":
        yield "embedded"
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield f"{url}?namespace={namespace}"
        _cleanup_redis(url, namespace)
    else:
        url = request.getfixturevalue("rabbitmq_vhost_url")
        yield f"{url}?namespace={namespace}"


def assert_contract_headers(mail: ReceivedMail, runtime: Runtime, number: int, party: Role,
                            event: str, locale: str, row: OutboxMail) -> None:
    msg = mail.message
    domain = runtime.settings.mail_domain
    # the gateway's address, named after the vendor for its customer, else the marketplace
    assert msg["From"].addresses[0].addr_spec == f"support@{domain}"
    assert msg["From"].addresses[0].display_name
    assert len(msg.get_all("To", [])) == 1
    assert msg["X-Ticket-Id"] == str(number)
    assert msg["X-Ticket-Event"] == event
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == locale
    assert msg["Message-ID"] == row.message_id
    assert msg.get_content_type() == "multipart/alternative"
    reply_to = Address(addr_spec=str(msg["Reply-To"]).strip())
    assert reply_to.domain == domain and reply_to.username.startswith("reply+")
    claim = runtime.tokens.read_reply_token(reply_to.username[len("reply+"):])
    assert (claim.subject_id, claim.party) == (number, party)


def run_worker(runtime: Runtime, url: str) -> Callable[[], Running]:
    setup: BrokerSetup = build_broker(runtime.settings)
    assert setup.namespace != "ticketgw" or url == "embedded"
    return lambda: start_worker(runtime, setup, scheduler=True, outbox_period=0.1,
                                deadline_period=0.5)


def test_every_broker_delivers_both_parties(broker_url: str,
                                            make_relay_runtime: Callable[..., Runtime],
                                            smtp_sink: SmtpSink) -> None:
    runtime = make_relay_runtime(broker_url=broker_url)
    seed_order(runtime, vendor_locale="de", customer_locale="fr")
    running = run_worker(runtime, broker_url)()
    try:
        number = open_refund(runtime)  # written by the service, found by the sweep
        mails = smtp_sink.wait_for(2, timeout=20)
        wait_until(lambda: all(r.state == "sent" for r in outbox(runtime)), timeout=10,
                   message="rows marked sent")
        by_rcpt = {m.rcpt_tos[0]: m for m in mails}
        rows = {r.recipient: r for r in outbox(runtime)}
        customer, vendor = by_rcpt[CUSTOMER], by_rcpt[VENDOR]
        assert customer.subject == f"Ticket ouvert - Demande de remboursement [Ticket #{number}]"
        assert vendor.subject == f"Ticket eröffnet - Rückerstattungsantrag [Ticket #{number}]"
        assert_contract_headers(customer, runtime, number, Role.CUSTOMER, "opened", "fr",
                                rows[CUSTOMER])
        assert_contract_headers(vendor, runtime, number, Role.VENDOR, "opened", "de",
                                rows[VENDOR])
        assert "It does not work at all." in text_part(customer.message)
        assert customer.raw.replace(b"\r\n", b"\n") == rows[CUSTOMER].raw.replace(b"\r\n", b"\n")

        # the deadline sweep through the actor executes the refund; `processed` reaches both
        runtime.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
        running.actors.sweep_deadlines.send()
        mails = smtp_sink.wait_for(4, timeout=20)
        processed = {m.rcpt_tos[0]: m for m in mails if m.message["X-Ticket-Event"] == "processed"}
        assert processed[CUSTOMER].subject == f"Remboursement traité [Ticket #{number}]"
        assert processed[VENDOR].subject == f"Rückerstattung durchgeführt [Ticket #{number}]"
        # the processed mail threads under the opened one
        assert rows[CUSTOMER].message_id in str(processed[CUSTOMER].message["References"])
    finally:
        running.stop()
    assert len(smtp_sink.messages) == 4
