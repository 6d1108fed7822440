"""Orders pushed by the marketplace (import file or API): validated, then created or updated."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain import order_lines
from gateway.domain.addresses import normalise_email
from gateway.domain.amounts import checked_money
from gateway.domain.clock import parse_instant
from gateway.domain.errors import Conflict, UserError
from gateway.domain.facts import CloseReason, Role, TicketType
from gateway.domain.locales import check_locale
from gateway.domain.support import SUPPORT_KIND
from gateway.services import journal, support
from gateway.services.context import ServiceContext
from store.models import Order, Payment, Product, Ticket, Vendor

_RECEIPT = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,63}$")
_KNOWN = {
    "receipt", "vendor", "sku", "title", "kind", "recurring", "customer_email", "customer_name",
    "quantity", "amount", "currency", "purchased_at", "payments", "shipped", "locale",
    "shop_url", "subscription", "return_info", "shipped_at", "notify",
    "covers_sku", "valid_until",  # a support subscription (kind "support")
}


@dataclass(frozen=True)
class OrderLine:
    receipt: str
    vendor: str
    sku: str
    title: str | None
    kind: str
    recurring: bool
    customer_email: str
    customer_name: str
    quantity: int
    amount: Decimal
    currency: str
    purchased_at: datetime
    payments: list[tuple[datetime, Decimal]]
    shipped: bool
    shipped_at: datetime | None
    return_info: bool
    locale: str
    shop_url: str | None
    subscription: str | None
    invalid: frozenset[str] = frozenset()  # the fields in error (read_line)
    covers_sku: str | None = None  # a support subscription: the product it covers
    valid_until: datetime | None = None  # ... and its last instant


T = TypeVar("T")
_NEVER = datetime.min.replace(tzinfo=UTC)  # the placeholder of a wrong date
# the fields the date and amount rules read: a line with one of them wrong skips those rules
_DATED = frozenset({"purchased_at", "amount", "payments", "recurring", "shipped_at"})


class _Problems:
    """The errors found in one line, all kept: an import reports every error of a line."""

    def __init__(self) -> None:
        self.errors: list[UserError] = []
        self.fields: set[str] = set()

    def take(self, name: str, read: Callable[[], T], placeholder: T) -> T:
        """`read()`, or `placeholder` with its error kept when the field is wrong."""
        try:
            return read()
        except UserError as exc:
            self.errors.append(exc)
            self.fields.add(name)
            return placeholder


def one_error(errors: list[UserError]) -> UserError:
    """All of a line's errors as one, `a; b; c` (a Conflict when every one is)."""
    if len(errors) == 1:
        return errors[0]
    codes = {e.code for e in errors}
    code = codes.pop() if len(codes) == 1 else "invalid_field"
    message = "; ".join(e.message for e in errors)
    if all(isinstance(e, Conflict) for e in errors):
        return Conflict(message, code=code)
    return UserError(message, code=code)


def _field(line: dict[str, Any], name: str) -> Any:
    value = line.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"field {name!r} is missing", code="missing_field")
    return value


def _text(line: dict[str, Any], name: str) -> str:
    return str(_field(line, name)).strip()


def _money(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise UserError(f"{name} {value!r} is not an amount such as \"47.00\"",
                        code="invalid_field") from None
    return checked_money(amount, name)


def _bool(value: Any, name: str, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise UserError(f"{name} must be true or false, not {value!r}", code="invalid_field")


def _instant(value: Any, name: str) -> datetime:
    try:
        return parse_instant(str(value))
    except ValueError as exc:
        raise UserError(f"{name}: {exc}", code="invalid_field") from None


def _unknown(line: dict[str, Any]) -> None:
    unknown = sorted(set(line) - _KNOWN)
    if unknown:
        raise UserError(f"unknown field(s): {', '.join(unknown)}", code="invalid_field")


def _receipt(line: dict[str, Any]) -> str:
    receipt = _text(line, "receipt").upper()
    if not _RECEIPT.match(receipt):
        raise UserError(f"receipt {receipt!r} must be 4-64 letters, digits or dashes",
                        code="invalid_field")
    return receipt


def _kind(line: dict[str, Any]) -> str:
    kind = str(line.get("kind") or "digital").strip().lower()
    if kind not in ("digital", "physical", SUPPORT_KIND):
        raise UserError(f"kind must be digital, physical or support, not {kind!r}",
                        code="invalid_field")
    return kind


def _quantity(line: dict[str, Any]) -> int:
    try:
        quantity = int(str(line.get("quantity", 1)).strip())
    except ValueError:
        raise UserError(f"quantity {line.get('quantity')!r} is not a whole number",
                        code="invalid_field") from None
    if quantity < 1:
        raise UserError(f"quantity must be at least 1, not {quantity}", code="invalid_field")
    return quantity


def _currency(line: dict[str, Any]) -> str:
    currency = str(line.get("currency") or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise UserError(f"currency {currency!r} must be a 3-letter code such as USD",
                        code="invalid_field")
    return currency


def _locale(line: dict[str, Any]) -> str:
    locale = str(line.get("locale") or "en").strip().lower()
    check_locale(locale)
    return locale


def _subscription(line: dict[str, Any]) -> str | None:
    subscription = line.get("subscription")
    if subscription is None:
        return None
    subscription = str(subscription).strip().lower()
    if subscription not in ("active", "cancelled"):
        raise UserError("subscription must be active or cancelled", code="invalid_field")
    return subscription


def read_line(line: dict[str, Any]) -> tuple[OrderLine, list[UserError]]:
    """One order (import line or API body) and every error found in it; a field in error
    holds a placeholder, and `OrderLine.invalid` names it. `upsert_order` stores it, or
    reports these errors together with those it finds itself."""
    if not isinstance(line, dict):
        raise UserError("an order must be a JSON object", code="invalid_field")
    p = _Problems()
    p.take("fields", lambda: _unknown(line), None)
    receipt = p.take("receipt", lambda: _receipt(line), "")
    email = p.take("customer_email", lambda: normalise_email(
        str(_field(line, "customer_email")), "customer_email"), "")
    kind = p.take("kind", lambda: _kind(line), "digital")
    quantity = p.take("quantity", lambda: _quantity(line), 1)
    amount = p.take("amount", lambda: _money(_field(line, "amount"), "amount"), Decimal("0"))
    currency = p.take("currency", lambda: _currency(line), "USD")
    purchased_at = p.take("purchased_at", lambda: _instant(_field(line, "purchased_at"),
                                                           "purchased_at"), _NEVER)
    no_bills: list[tuple[datetime, Decimal]] = []
    payments = p.take("payments", lambda: _payments(line.get("payments"), purchased_at,
                                                    amount), no_bills)
    recurring = p.take("recurring", lambda: _bool(line.get("recurring"), "recurring"), False)
    locale = p.take("locale", lambda: _locale(line), "en")
    subscription = p.take("subscription", lambda: _subscription(line), None)
    shipped_at = line.get("shipped_at")
    return OrderLine(
        receipt=receipt,
        vendor=p.take("vendor", lambda: _text(line, "vendor"), ""),
        sku=p.take("sku", lambda: _text(line, "sku"), ""),
        title=str(line["title"]).strip() if line.get("title") else None,
        kind=kind,
        recurring=recurring,
        customer_email=email,
        customer_name=str(line.get("customer_name") or "").strip(),
        quantity=quantity,
        amount=amount,
        currency=currency,
        purchased_at=purchased_at,
        payments=payments,
        shipped=p.take("shipped", lambda: _bool(line.get("shipped"), "shipped"), False),
        shipped_at=p.take("shipped_at", lambda: _instant(shipped_at, "shipped_at"), None)
        if shipped_at else None,
        return_info=p.take("return_info", lambda: _bool(line.get("return_info"),
                                                        "return_info"), False),
        locale=locale,
        shop_url=p.take("shop_url", lambda: support.shop_url_of(line), None),
        subscription=(subscription or "active") if recurring else None,
        invalid=frozenset(p.fields),
        covers_sku=p.take("covers_sku", lambda: support.covers_sku_of(line, kind), None),
        valid_until=p.take("valid_until", lambda: support.valid_until_of(line, kind), None),
    ), p.errors


def parse_line(line: dict[str, Any]) -> OrderLine:
    """Validate one order (import line or API body); the error names every field and fix."""
    order_line, errors = read_line(line)
    if errors:
        raise one_error(errors)
    return order_line


def _payments(raw: Any, purchased_at: datetime, amount: Decimal) -> list[tuple[datetime, Decimal]]:
    if raw is None or raw == "":
        return [(purchased_at, amount)]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise UserError("payments must be a JSON list like "
                            '[{"at": "2026-11-20T10:00:00Z", "amount": "47.00"}]',
                            code="invalid_field") from None
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        raise UserError("payments must be a list of {\"at\", \"amount\"} objects",
                        code="invalid_field")
    payments = [(_instant(_field(p, "at"), "payments.at"), _money(_field(p, "amount"),
                 "payments.amount")) for p in raw]
    return sorted(payments) or [(purchased_at, amount)]


# what an order line says about the order itself, copied as it is on create and update
_COPIED = ("customer_email", "customer_name", "quantity", "amount", "currency", "purchased_at",
           "locale", "shop_url", "subscription", "shipped", "shipped_at", "return_info",
           "covers_sku", "valid_until")


def upsert_order(session: Session, ctx: ServiceContext, line: OrderLine, *,
                 notify: bool = False, problems: Sequence[UserError] = ()
                 ) -> tuple[Order, bool]:
    """Create or update one order; returns (order, created). Nothing is stored on error,
    and the error reports every problem of the line: `problems` (read_line's) with those
    found here against the clock and the store."""
    errors = list(problems)
    if not line.invalid & _DATED:
        errors += [UserError(m, code="invalid_field") for m in order_lines.line_problems(
            purchased_at=line.purchased_at, amount=line.amount, recurring=line.recurring,
            payments=line.payments, shipped_at=line.shipped_at, now=ctx.now)]
    if line.invalid & {"receipt", "vendor", "sku"}:
        raise one_error(errors)  # nothing to look the line up by
    vendor, product = _vendor_and_product(session, line, errors)
    if vendor is not None:
        errors += support.line_problems(session, vendor.id, line.kind, line.covers_sku,
                                        line.purchased_at, line.valid_until, line.invalid)
    order = session.execute(
        select(Order).where(Order.receipt == line.receipt)).unique().scalar_one_or_none()
    recorded = order_lines.Recorded()
    if order is not None and vendor is not None and order.vendor_id != vendor.id:
        errors.append(UserError(f"receipt {line.receipt} belongs to another vendor",
                                code="conflict"))
    elif order is not None and not line.invalid & {"amount", "payments"}:
        recorded = _recorded(session, order)
        errors += [Conflict(m) for m in order_lines.recorded_problems(
            recorded, amount=line.amount, payments=line.payments,
            stored_bills=frozenset(p.at for p in order.payments))]
    if errors or vendor is None:
        raise one_error(errors)
    if product is None:
        product = Product(vendor_id=vendor.id, sku=line.sku, title=line.title, kind=line.kind,
                          recurring=line.recurring, business_care=False)
        session.add(product)
        session.flush()
    created = order is None
    if order is None:
        order = Order(receipt=line.receipt, refunded_amount=Decimal("0"), created_at=ctx.now,
                      support_active=True)
    _write(order, vendor, product, line, recorded, ctx)
    support.mark_covered(session, vendor.id, line.covers_sku)
    session.add(order)
    session.flush()
    if created and notify:
        journal.notify_order(session, ctx, order, "receipt", Role.CUSTOMER)
        journal.notify_order(session, ctx, order, "sale", Role.VENDOR)
    return order, created


def _vendor_and_product(session: Session, line: OrderLine, errors: list[UserError]
                        ) -> tuple[Vendor | None, Product | None]:
    """The line's vendor and product (None: a product to create); problems go to `errors`."""
    vendor = session.execute(
        select(Vendor).where(Vendor.nickname == line.vendor)).scalar_one_or_none()
    if vendor is None:
        errors.append(UserError(f"unknown vendor {line.vendor!r}; add it first with "
                                f"`ticketgw vendor add {line.vendor} --email ...`",
                                code="unknown_vendor"))
        return None, None
    product = session.execute(
        select(Product).where(Product.vendor_id == vendor.id, Product.sku == line.sku)
    ).scalar_one_or_none()
    if product is None:
        if not line.title:
            errors.append(UserError(
                f"unknown SKU {line.sku!r} for vendor {vendor.nickname!r}: give a title "
                "(with kind and recurring) to create the product", code="unknown_sku"))
        return vendor, None
    clash = [name for name, mine, theirs in (
        ("title", line.title, product.title), ("kind", line.kind, product.kind),
        ("recurring", line.recurring, product.recurring))
        if name not in line.invalid and mine is not None and mine != theirs]
    if clash:
        errors.append(UserError(
            f"SKU {line.sku!r} already exists with a different "
            + ", ".join(f"{n} ({getattr(product, n)!r})" for n in clash),
            code="product_conflict"))
    return vendor, product


def _recorded(session: Session, order: Order) -> order_lines.Recorded:
    """What our processed tickets did to the order: it wins over what an import says."""
    rows = session.execute(
        select(Ticket.number, Ticket.type, Ticket.closed_at)
        .where(Ticket.order_id == order.id, Ticket.close_reason == CloseReason.PROCESSED.value)
        .order_by(Ticket.closed_at, Ticket.number)).all()
    # a cancellation stops the subscription, and so does a refund of a recurring product
    stops = [(at, number) for number, kind, at in rows
             if kind == TicketType.CANCELLATION.value or order.product.recurring]
    cancelled_at, cancelled_by = stops[0] if stops else (None, None)
    return order_lines.Recorded(
        cancelled_at=cancelled_at, cancelled_by=cancelled_by,
        refunded_amount=order.refunded_amount,
        refunded_by=tuple(n for n, kind, _ in rows if kind == TicketType.REFUND.value),
        refunded_bills=tuple((p.at, p.amount, p.refunded_amount) for p in order.payments
                             if p.refunded_amount > 0))


def _write(order: Order, vendor: Vendor, product: Product, line: OrderLine,
           recorded: order_lines.Recorded, ctx: ServiceContext) -> None:
    order.vendor_id = vendor.id
    order.vendor = vendor
    order.product_id = product.id
    order.product = product
    for name in _COPIED:
        setattr(order, name, getattr(line, name))
    order.subscription = order_lines.subscription_after_import(line.subscription, recorded)
    order.updated_at = ctx.now
    _sync_payments(order, line.payments)


def _sync_payments(order: Order, payments: list[tuple[datetime, Decimal]]) -> None:
    """Keep refunded amounts of bills that are still there; add new bills, drop gone ones."""
    existing = {(p.at, p.amount): p for p in order.payments}
    kept = []
    for at, amount in payments:
        payment = existing.pop((at, amount), None)
        kept.append(payment or Payment(at=at, amount=amount, refunded_amount=Decimal("0")))
    order.payments = kept
