"""Support subscriptions in the store: what covers a tech-support request, what a refund ends.

The rules are `gateway.domain.support`'s; this module reads the subscriptions they judge and
writes what executing a product's refund does to them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from gateway.domain.amounts import amount_left
from gateway.domain.clock import format_instant, parse_instant
from gateway.domain.errors import UserError
from gateway.domain.facts import OrderFacts, TicketType
from gateway.domain.policy import Policy
from gateway.domain.support import (
    SUPPORT_KIND,
    SupportLine,
    SupportNeed,
    shop_key,
    to_end,
)
from gateway.services.execution import RefundExecutor
from gateway.services.snapshots import order_facts
from store.models import Event, Order, Product, Ticket

# --- order lines (import and POST /orders) ---------------------------------------------


def shop_url_of(line: dict[str, Any]) -> str | None:
    """An order line's `shop_url` (kept as given: pages show it only through
    `safe_download`), if it gives one of at most 2000 characters."""
    value = line.get("shop_url")
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if len(text) > MAX_SHOP_URL:
        raise UserError(f"shop_url is {len(text)} characters long; at most {MAX_SHOP_URL}",
                        code="invalid_field")
    return text


def covers_sku_of(line: dict[str, Any], kind: str) -> str | None:
    """A support line's `covers_sku` (required there, refused anywhere else)."""
    value = str(line.get("covers_sku") or "").strip()
    if kind != SUPPORT_KIND:
        if value:
            raise UserError('covers_sku belongs to a support subscription: give "kind": '
                            '"support" or leave covers_sku out', code="invalid_field")
        return None
    if not value:
        raise UserError("a support subscription needs covers_sku, the SKU of the product it "
                        "covers", code="missing_field")
    return value


def valid_until_of(line: dict[str, Any], kind: str) -> datetime | None:
    """A support line's `valid_until`: an instant, or a date meaning the end of that day
    (UTC)."""
    value = str(line.get("valid_until") or "").strip()
    if kind != SUPPORT_KIND:
        if value:
            raise UserError('valid_until belongs to a support subscription: give "kind": '
                            '"support" or leave valid_until out', code="invalid_field")
        return None
    if not value:
        raise UserError("a support subscription needs valid_until, the last day it covers "
                        "(such as 2027-11-20)", code="missing_field")
    try:
        until = parse_instant(value)
    except ValueError as exc:
        raise UserError(f"valid_until: {exc}", code="invalid_field") from None
    if len(value) == 10:  # a date: the whole of that day
        until += timedelta(days=1, seconds=-1)
    return until


def line_problems(session: Session, vendor_id: int, kind: str, covers_sku: str | None,
                  purchased_at: datetime, valid_until: datetime | None,
                  invalid: frozenset[str]) -> list[UserError]:
    """What is wrong with a support line against the store: the product it covers must be
    one of the vendor's (not a subscription), and it must end after it starts."""
    if kind != SUPPORT_KIND or covers_sku is None:
        return []
    problems = []
    covered = session.execute(select(Product.kind).where(
        Product.vendor_id == vendor_id, Product.sku == covers_sku)).scalar_one_or_none()
    if covered is None:
        problems.append(UserError(
            f"covers_sku {covers_sku!r} is not a product of this vendor; import the "
            "product's order first", code="unknown_sku"))
    elif covered == SUPPORT_KIND:
        problems.append(UserError(f"covers_sku {covers_sku!r} is itself a support "
                                  "subscription; name the product it is for",
                                  code="invalid_field"))
    if (valid_until is not None and "purchased_at" not in invalid
            and valid_until <= purchased_at):
        problems.append(UserError(
            f"valid_until {format_instant(valid_until)} is not after purchased_at "
            f"{format_instant(purchased_at)}", code="invalid_field"))
    return problems


def mark_covered(session: Session, vendor_id: int, covers_sku: str | None) -> None:
    """The covered product has a Business Care offer (`products.business_care`)."""
    if covers_sku is None:
        return
    product = session.execute(select(Product).where(
        Product.vendor_id == vendor_id, Product.sku == covers_sku)).scalar_one_or_none()
    if product is not None and not product.business_care:
        product.business_care = True


# --- tech support and refunds ------------------------------------------------------------


MAX_SHOP_URL = 2000  # orders.shop_url


def is_support_line(order: Order) -> bool:
    return order.covers_sku is not None


def line_of(order: Order) -> SupportLine:
    assert order.covers_sku is not None and order.valid_until is not None
    return SupportLine(receipt=order.receipt, covers_sku=order.covers_sku,
                       shop_url=order.shop_url, starts_at=order.purchased_at,
                       valid_until=order.valid_until, ended=not order.support_active,
                       amount=order.amount)


def need_of(session: Session, order: Order) -> SupportNeed:
    """What tech support on `order` needs: its product (the covered one, for a subscription)
    on its shop, with the subscriptions for that product of that shop or of that customer
    (never another customer's on another shop: a refusal names the shops it read)."""
    sku = order.covers_sku or order.product.sku
    own = Order.customer_email == order.customer_email
    wanted = shop_key(order.shop_url)
    if wanted:  # the host narrows the search; the exact shop is compared below
        host = wanted.split("/")[0].replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_")
        own = or_(own, Order.shop_url.ilike(f"%{host}%", escape="\\"))
    found = session.execute(select(Order).where(
        Order.vendor_id == order.vendor_id, Order.covers_sku == sku, own)
        .order_by(Order.valid_until)).unique().scalars().all()
    lines = tuple(line_of(o) for o in found if o.valid_until is not None and (
        o.customer_email == order.customer_email or shop_key(o.shop_url) == wanted))
    return SupportNeed(sku, order.shop_url, lines)


def facts_for_support(session: Session, policy: Policy, order: Order) -> OrderFacts:
    """The order's facts for opening tech support: with its subscriptions when the policy
    asks for one."""
    facts = order_facts(order)
    if not policy.tech_support_needs_support_subscription:
        return facts
    return dataclasses.replace(facts, support=need_of(session, order))


def asked_support_before(session: Session, order_id: int, ticket: Ticket | None = None) -> bool:
    """Whether the order had a tech-support ticket opened before now (a refund for a
    malfunction needs one, seed 004); `ticket`, the one being asked about, does not count."""
    opened = (select(Event.id).join(Ticket, Event.ticket_id == Ticket.id)
              .where(Ticket.order_id == order_id, Event.kind == "opened",
                     Event.new == TicketType.TECH_SUPPORT.value))
    if ticket is not None and ticket.id is not None:
        opened = opened.where(Ticket.id != ticket.id)
    return bool(session.execute(select(exists(opened))).scalar())


@dataclasses.dataclass(frozen=True)
class EndedLine:
    """A support subscription a product's refund refunded and ended."""

    receipt: str
    amount: Decimal
    currency: str

    def as_json(self) -> dict[str, Any]:
        return {"receipt": self.receipt, "amount": f"{self.amount:.2f}",
                "currency": self.currency}


def lines_ending_with(session: Session, order: Order) -> list[Order]:
    """The subscriptions a refund of `order` (a product) also refunds and ends."""
    if is_support_line(order) or order.product.kind == SUPPORT_KIND:
        return []
    need = need_of(session, order)
    ending = {line.receipt for line in to_end(need.sku, need.shop_url, need.lines)}
    if not ending:
        return []
    return list(session.execute(select(Order).where(Order.receipt.in_(ending))
                                .order_by(Order.receipt)).unique().scalars())


def end_with_product(session: Session, executor: RefundExecutor, order: Order,
                     ticket: Ticket) -> list[EndedLine]:
    """Executing a refund of the product `order` on `ticket`: its support subscriptions are
    refunded (what is left of each) and ended too, by the same executor."""
    ended = []
    for line in lines_ending_with(session, order):
        amount = refund_left(line)
        if amount > 0:
            executor.refund(session, line, ticket, amount)
        line.support_active = False
        ended.append(EndedLine(line.receipt, amount, line.currency))
    return ended


def refund_left(line: Order) -> Decimal:
    """What a full refund of a subscription gives back now (its last bill when recurring;
    0.00 when refunded in full already: then it only ends)."""
    return amount_left(order_facts(line))
