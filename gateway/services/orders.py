"""Orders pushed by the marketplace (import file or API): validated, then created or updated."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.addresses import normalise_email
from gateway.domain.amounts import checked_money
from gateway.domain.clock import parse_instant
from gateway.domain.errors import UserError
from gateway.domain.facts import Role
from gateway.domain.locales import check_locale
from gateway.services import journal
from gateway.services.context import ServiceContext
from store.models import Order, Payment, Product, Vendor

_RECEIPT = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,63}$")
_KNOWN = {
    "receipt", "vendor", "sku", "title", "kind", "recurring", "customer_email", "customer_name",
    "quantity", "amount", "currency", "purchased_at", "payments", "shipped", "locale",
    "shop_url", "subscription", "return_info", "shipped_at", "notify",
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


def _field(line: dict[str, Any], name: str) -> Any:
    value = line.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"field {name!r} is missing", code="missing_field")
    return value


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


def parse_line(line: dict[str, Any]) -> OrderLine:
    """Validate one order (import line or API body); the error names the field and the fix."""
    if not isinstance(line, dict):
        raise UserError("an order must be a JSON object", code="invalid_field")
    unknown = sorted(set(line) - _KNOWN)
    if unknown:
        raise UserError(f"unknown field(s): {', '.join(unknown)}", code="invalid_field")
    receipt = str(_field(line, "receipt")).strip().upper()
    if not _RECEIPT.match(receipt):
        raise UserError(f"receipt {receipt!r} must be 4-64 letters, digits or dashes",
                        code="invalid_field")
    email = normalise_email(str(_field(line, "customer_email")), "customer_email")
    kind = str(line.get("kind") or "digital").strip().lower()
    if kind not in ("digital", "physical"):
        raise UserError(f"kind must be digital or physical, not {kind!r}", code="invalid_field")
    try:
        quantity = int(str(line.get("quantity", 1)).strip())
    except ValueError:
        raise UserError(f"quantity {line.get('quantity')!r} is not a whole number",
                        code="invalid_field") from None
    if quantity < 1:
        raise UserError(f"quantity must be at least 1, not {quantity}", code="invalid_field")
    amount = _money(_field(line, "amount"), "amount")
    currency = str(line.get("currency") or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise UserError(f"currency {currency!r} must be a 3-letter code such as USD",
                        code="invalid_field")
    purchased_at = _instant(_field(line, "purchased_at"), "purchased_at")
    payments = _payments(line.get("payments"), purchased_at, amount)
    recurring = _bool(line.get("recurring"), "recurring")
    locale = str(line.get("locale") or "en").strip().lower()
    check_locale(locale)
    subscription = line.get("subscription")
    if subscription is not None:
        subscription = str(subscription).strip().lower()
        if subscription not in ("active", "cancelled"):
            raise UserError("subscription must be active or cancelled", code="invalid_field")
    elif recurring:
        subscription = "active"
    shipped_at = line.get("shipped_at")
    return OrderLine(
        receipt=receipt,
        vendor=str(_field(line, "vendor")).strip(),
        sku=str(_field(line, "sku")).strip(),
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
        shipped=_bool(line.get("shipped"), "shipped"),
        shipped_at=_instant(shipped_at, "shipped_at") if shipped_at else None,
        return_info=_bool(line.get("return_info"), "return_info"),
        locale=locale,
        shop_url=str(line["shop_url"]).strip() if line.get("shop_url") else None,
        subscription=subscription if recurring else None,
    )


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
           "locale", "shop_url", "subscription", "shipped", "shipped_at", "return_info")


def upsert_order(session: Session, ctx: ServiceContext, line: OrderLine, *,
                 notify: bool = False) -> tuple[Order, bool]:
    """Create or update one order; returns (order, created). Nothing is stored on error."""
    vendor = session.execute(
        select(Vendor).where(Vendor.nickname == line.vendor)).scalar_one_or_none()
    if vendor is None:
        raise UserError(f"unknown vendor {line.vendor!r}; add it first with "
                        f"`ticketgw vendor add {line.vendor} --email ...`", code="unknown_vendor")
    product = session.execute(
        select(Product).where(Product.vendor_id == vendor.id, Product.sku == line.sku)
    ).scalar_one_or_none()
    if product is None:
        if not line.title:
            raise UserError(f"unknown SKU {line.sku!r} for vendor {vendor.nickname!r}: "
                            "give a title (with kind and recurring) to create the product",
                            code="unknown_sku")
        product = Product(vendor_id=vendor.id, sku=line.sku, title=line.title, kind=line.kind,
                          recurring=line.recurring, business_care=False)
        session.add(product)
        session.flush()
    else:
        clash = [name for name, mine, theirs in (
            ("title", line.title, product.title), ("kind", line.kind, product.kind),
            ("recurring", line.recurring, product.recurring))
            if mine is not None and mine != theirs]
        if clash:
            raise UserError(
                f"SKU {line.sku!r} already exists with a different "
                + ", ".join(f"{n} ({getattr(product, n)!r})" for n in clash),
                code="product_conflict")
    order = session.execute(
        select(Order).where(Order.receipt == line.receipt)).unique().scalar_one_or_none()
    created = order is None
    if order is None:
        order = Order(receipt=line.receipt, refunded_amount=Decimal("0"), created_at=ctx.now,
                      support_active=True)
        session.add(order)
    elif order.vendor_id != vendor.id:
        raise UserError(f"receipt {line.receipt} belongs to another vendor", code="conflict")
    order.vendor_id = vendor.id
    order.vendor = vendor
    order.product_id = product.id
    order.product = product
    for name in _COPIED:
        setattr(order, name, getattr(line, name))
    order.updated_at = ctx.now
    _sync_payments(order, line.payments)
    session.flush()
    if created and notify:
        journal.notify_order(session, ctx, order, "receipt", Role.CUSTOMER)
        journal.notify_order(session, ctx, order, "sale", Role.VENDOR)
    return order, created


def _sync_payments(order: Order, payments: list[tuple[datetime, Decimal]]) -> None:
    """Keep refunded amounts of bills that are still there; add new bills, drop gone ones."""
    existing = {(p.at, p.amount): p for p in order.payments}
    kept = []
    for at, amount in payments:
        payment = existing.pop((at, amount), None)
        kept.append(payment or Payment(at=at, amount=amount, refunded_amount=Decimal("0")))
    order.payments = kept
