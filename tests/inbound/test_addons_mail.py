"""The addons profile by mail, through the real SMTP listener on SQLite and PostgreSQL: the
support gate's answer, a vendor's `#refund REASON` and `#template NAME`, the signature, a
refund request's reason, and the seed's whole story end to end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.domain.facts import Action, Role, TicketType
from gateway.services import deadlines, orders, tickets, vendor_texts, vendors
from gateway.services.context import Actor
from gateway.services.runtime import Runtime
from gateway.services.views import order_view, ticket_view
from outbound.compose import Composer
from store.models import OutboxMail, Ticket
from tests.inbound.conftest import DOMAIN, SmtpServer, make_mail, send
from tests.inbound.test_forwards import forward_sample
from ticketgw.testing.runtime import START, make_runtime

CUSTOMER = "ann@example.org"
VENDOR = "owner@acme.example"
STAFF = Actor(Role.STAFF, source="cli")
SHOP = "https://shop-a.example"
SUPPORT = f"support@{DOMAIN}"


def line(receipt: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "receipt": receipt, "vendor": "acme", "sku": "module-1", "title": "Shipping Module",
        "customer_email": CUSTOMER, "customer_name": "Ann", "amount": "47.00",
        "currency": "EUR", "purchased_at": (START - timedelta(days=3)).isoformat(),
        "locale": "en", "shop_url": SHOP}
    values.update(overrides)
    return values


def care(receipt: str, valid_until: str, shop_url: str = SHOP) -> dict[str, Any]:
    return line(receipt, sku="care-module-1", title="Business Care", kind="support",
                covers_sku="module-1", amount="20.00", valid_until=valid_until,
                shop_url=shop_url)


def bought(who: str, receipt: str, care_receipt: str, valid_until: str,
           care_shop: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """`who`'s module on its own shop, and a Business Care subscription."""
    shop = f"https://{who}.example"
    email = f"{who}@example.org"
    return (line(receipt, customer_email=email, shop_url=shop),
            care(care_receipt, valid_until, care_shop or shop) | {"customer_email": email})


@pytest.fixture
def addons(migrated_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path, policy="addons")
    with rt.sessions.begin() as session:
        ctx = rt.context()
        vendors.add_vendor(session, ctx, STAFF, "acme", VENDOR, timezone="Europe/Paris")
        for order in (line("MODULE1"),  # no Business Care
                      *bought("bob", "MODULE2", "CARE2", "2026-11-18"),  # expired
                      *bought("cyd", "MODULE3", "CARE3", "2027-11-18",  # another shop
                              care_shop="https://cyd-old.example"),
                      *bought("dee", "MODULE4", "CARE4", "2027-11-18")):  # valid
            orders.upsert_order(session, ctx, orders.parse_line(order))
    yield rt
    rt.close()


@pytest.fixture
def smtp(addons: Runtime) -> Iterator[SmtpServer]:
    server = SmtpServer(addons)
    yield server
    server.stop()


def ticket_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count(Ticket.id))).scalar_one())


def show(rt: Runtime, number: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return ticket_view(tickets.find_ticket(session, number))


def reply_address(rt: Runtime, number: int, party: Role) -> str:
    return f"reply+{rt.tokens.reply_token(number, party)}@{DOMAIN}"


def ask_support(smtp: SmtpServer, sender: str, receipt: str) -> tuple[int, str]:
    raw = make_mail(sender=sender, to=SUPPORT, subject=f"Help with {receipt}",
                    body=f"Order {receipt}: the module shows a blank page.")
    code, text = send(smtp, raw, rcpt=SUPPORT, mail_from=sender)
    return code, text.decode()


@pytest.mark.parametrize(("sender", "receipt", "says"), [
    (CUSTOMER, "MODULE1", "this order has none: buy Business Care for module-1 "
     "(https://shop-a.example)"),
    ("bob@example.org", "MODULE2", "(CARE2) expired on 2026-11-18T23:59:59Z: renew "
     "Business Care for module-1 (https://bob.example)"),
    ("cyd@example.org", "MODULE3", "yours covers https://cyd-old.example: buy Business Care "
     "for module-1 (https://cyd.example)"),
])
def test_support_mail_without_valid_business_care_is_answered_550(
        addons: Runtime, smtp: SmtpServer, sender: str, receipt: str, says: str) -> None:
    code, text = ask_support(smtp, sender, receipt)
    assert code == 550 and text.startswith("5.7.0 ")
    assert says in " ".join(text.split())
    others = {"bob", "cyd", "dee"} - {sender.split("@")[0]}
    assert not [o for o in others if f"{o}.example" in text]  # no one else's shop is named
    assert ticket_count(addons) == 0


def test_support_mail_with_valid_business_care_opens_a_ticket(addons: Runtime,
                                                               smtp: SmtpServer) -> None:
    code, text = ask_support(smtp, "dee@example.org", "MODULE4")
    assert (code, text) == (250, "2.0.0 opened #1001")


def vendor_mail(smtp: SmtpServer, rt: Runtime, number: int, body: str) -> tuple[int, str]:
    raw = make_mail(sender=VENDOR, to=reply_address(rt, number, Role.VENDOR),
                    subject=f"Re: [Ticket #{number}]", body=body)
    code, text = send(smtp, raw, rcpt=reply_address(rt, number, Role.VENDOR), mail_from=VENDOR)
    return code, text.decode()


def save_texts(rt: Runtime) -> None:
    with rt.sessions.begin() as session:
        vendor_texts.save_template(session, rt.context(), STAFF, "acme", "refund",
                                   "Dear {{ customer_name }}, sorry that {{ product }} "
                                   "failed you: ticket #{{ ticket }} is now a refund.")
        vendor_texts.set_signature(session, rt.context(), STAFF, "acme",
                                   "Acme Modules\nhttps://acme.example")


def test_vendor_refund_reason_and_template_by_mail(addons: Runtime, smtp: SmtpServer) -> None:
    save_texts(addons)
    ask_support(smtp, "dee@example.org", "MODULE4")
    code, text = vendor_mail(smtp, addons, 1001,
                             "#template refund\n#refund malfunction\n\nWe could not fix it.")
    assert (code, text) == (250, "2.0.0 threaded to #1001")
    view = show(addons, 1001)
    assert (view["type"], view["reason"], view["escalated"]) == ("refund", "malfunction", True)
    assert view["messages"][-1]["text"] == (
        "Dear Ann, sorry that Shipping Module failed you: ticket #1001 is now a refund.\n\n"
        "We could not fix it.\n\n-- \nAcme Modules\nhttps://acme.example")
    with addons.sessions() as session:
        staff = session.execute(select(OutboxMail.event, OutboxMail.recipient).where(
            OutboxMail.party == "staff")).all()
    assert staff == [("escalated", addons.settings.staff_email)]


def test_an_unknown_template_by_mail_changes_nothing(addons: Runtime, smtp: SmtpServer) -> None:
    save_texts(addons)
    ask_support(smtp, "dee@example.org", "MODULE4")
    code, text = vendor_mail(smtp, addons, 1001, "#template nope\nHello")
    assert code == 250 and "not applied to #1001 (a notice was sent)" in text
    assert len(show(addons, 1001)["messages"]) == 1
    assert "have no reply template 'nope'; yours are: refund" in rendered(
        addons, "notice", VENDOR)


def test_the_signature_the_vendors_client_added_is_not_added_again(addons: Runtime,
                                                                   smtp: SmtpServer) -> None:
    save_texts(addons)
    ask_support(smtp, "dee@example.org", "MODULE4")
    vendor_mail(smtp, addons, 1001, "Try version 2.1.\n\nAcme Modules\nhttps://acme.example\n")
    vendor_mail(smtp, addons, 1001, "Or 2.2.\n\n-- \nAcme Modules\nhttps://acme.example\n")
    texts = [m["text"] for m in show(addons, 1001)["messages"][1:]]
    assert texts == ["Try version 2.1.\n\nAcme Modules\nhttps://acme.example",
                     "Or 2.2.\n\n-- \nAcme Modules\nhttps://acme.example"]


def test_a_refund_request_by_mail_takes_its_reason_from_refund_line(addons: Runtime,
                                                                    smtp: SmtpServer) -> None:
    refunds = f"refunds@{DOMAIN}"
    raw = make_mail(sender=CUSTOMER, to=refunds, subject="Refund MODULE1",
                    body="I never got the file.")
    code, text = send(smtp, raw, rcpt=refunds)
    assert code == 550 and "needs a reason, one of: not_downloaded, malfunction" in (
        " ".join(text.decode().split()))
    raw = make_mail(sender=CUSTOMER, to=refunds, subject="Refund MODULE1",
                    body="#refund not_downloaded\n\nI never got the file.")
    code, _ = send(smtp, raw, rcpt=refunds)
    assert code == 250
    view = show(addons, 1001)
    assert (view["type"], view["reason"], view["messages"][0]["text"]) == (
        "refund", "not_downloaded", "I never got the file.")


def rendered(rt: Runtime, event: str, recipient: str) -> str:
    """The text part of the newest `event` mail to `recipient`, as the worker renders it."""
    with rt.sessions() as session:
        row = session.execute(select(OutboxMail).where(
            OutboxMail.event == event, OutboxMail.recipient == recipient)
            .order_by(OutboxMail.id.desc()).limit(1)).scalar_one()
        raw = Composer(rt.settings, rt.tokens).compose(session, row, rt.clock.now()).raw
    body = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


def test_the_seeds_story_by_mail(addons: Runtime, smtp: SmtpServer) -> None:
    """A customer without Business Care for that shop is told to renew; with it, opens a
    ticket; the vendor answers with a saved template and its signature and approves the
    refund with a reason; customer and staff are told; the refund runs, covering the
    Business Care subscription, which ends."""
    save_texts(addons)
    code, text = ask_support(smtp, "cyd@example.org", "MODULE3")  # wrong shop: renew
    assert code == 550 and "buy Business Care for module-1 (https://cyd.example)" in (
        " ".join(text.split()))
    code, text = ask_support(smtp, "dee@example.org", "MODULE4")
    assert (code, text) == (250, "2.0.0 opened #1001")
    code, _ = vendor_mail(smtp, addons, 1001, "#template refund\n#refund malfunction")
    assert code == 250
    with addons.sessions() as session:
        told = session.execute(select(OutboxMail.event, OutboxMail.recipient)
                               .order_by(OutboxMail.id)).all()
    assert told[2:] == [("changed", "dee@example.org"), ("changed", VENDOR),
                        ("escalated", addons.settings.staff_email)]
    staff = rendered(addons, "escalated", addons.settings.staff_email)
    assert "refund approved by the vendor (reason: malfunction)" in staff
    assert "Dear Ann, sorry that Shipping Module failed you" in rendered(
        addons, "changed", "dee@example.org")
    view = show(addons, 1001)
    assert view["messages"][-1]["text"].endswith("\n\n-- \nAcme Modules\nhttps://acme.example")
    result = deadlines.run_due(addons.sessions,
                               lambda: addons.context(START + timedelta(minutes=5)),
                               addons.refunds)
    assert result.processed == 1
    done = show(addons, 1001)
    assert (done["status"], done["refund_amount"], done["support_refunds"]) == (
        "closed", "47.00", [{"receipt": "CARE4", "amount": "20.00", "currency": "EUR"}])
    with addons.sessions() as session:
        care_line = order_view(tickets.find_order(session, "CARE4"))
        processed = session.execute(select(OutboxMail.recipient, OutboxMail.payload).where(
            OutboxMail.event == "processed")).all()
    assert (care_line["refunded_amount"], care_line["support_active"]) == ("20.00", False)
    assert {r for r, _ in processed} == {"dee@example.org", VENDOR}
    assert all(p["support_refunds"][0]["receipt"] == "CARE4" for _, p in processed)
    told_customer = rendered(addons, "processed", "dee@example.org")  # in the order's locale
    assert "€47.00" in told_customer and (
        "The Business Care subscription CARE4 for this product was refunded too (€20.00), and "
        "it has ended.") in told_customer
    code, text = ask_support(smtp, "dee@example.org", "MODULE4")  # it has ended
    assert code == 550 and "was ended by a refund" in " ".join(text.split())


def test_a_forward_that_cannot_follow_up_a_closed_ticket_tells_the_forwarder(
        addons: Runtime, smtp: SmtpServer) -> None:
    # Ann's closed refund named in a forward: her follow-up would need Business Care. The
    # vendor who forwarded it is told why nothing was added; Ann, who sent us nothing, is not
    customer = Actor(Role.CUSTOMER, CUSTOMER, source="web")
    with addons.sessions.begin() as session:
        number = tickets.open_ticket(session, addons.context(), "MODULE1", TicketType.REFUND,
                                     customer, reason="not_downloaded", comment="no file").number
    with addons.sessions.begin() as session:
        tickets.act(session, addons.context(), number, Action.CLOSE, customer)
    code, text = send(smtp, forward_sample("forward_gmail_en.eml", VENDOR, ticket=number),
                      rcpt=SUPPORT, mail_from=VENDOR)
    assert code == 250 and b"not applied" in text
    assert ticket_count(addons) == 1
    with addons.sessions() as session:
        told = session.execute(select(OutboxMail.recipient, OutboxMail.party).where(
            OutboxMail.event == "notice")).all()
    assert [tuple(row) for row in told] == [(VENDOR, "vendor")]
