"""Tickets and orders as the contract's JSON objects (CLI `--json` and the REST API)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.services.deadlines import next_deadline
from store.models import Message, Order, OutboxMail, Ticket


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def message_view(message: Message) -> dict[str, Any]:
    return {
        "author_role": message.author_role,
        "author_email": message.author_email,
        "text": message.text,
        "source": message.source,
        # false: a mail matched by subject token and From only (that sender may be anyone)
        "verified": message.verified,
        "message_id": message.message_id,
        "created_at": format_instant(message.created_at),
        "attachments": [
            # `id`: GET /api/v1/tickets/N/attachments/ID serves its bytes
            {"id": a.id, "filename": a.filename, "content_type": a.content_type,
             "size": a.size}
            for a in message.attachments
        ],
    }


def ticket_view(ticket: Ticket, *, full: bool = True) -> dict[str, Any]:
    order = ticket.order
    view: dict[str, Any] = {
        "number": ticket.number,
        "title": ticket.title,  # the customer's own subject, when the ticket came by mail
        "type": ticket.type,
        "status": ticket.status,
        "receipt": order.receipt,
        "vendor": order.vendor.nickname,
        "customer_email": order.customer_email,
        "created_by": ticket.created_by,
        "created_at": format_instant(ticket.created_at),
        "reason": ticket.reason,
        "problem": ticket.problem,
        "process_at": format_instant(ticket.process_at),
        "awaiting_confirmation": ticket.awaiting_confirmation,
        "closed_at": format_instant(ticket.closed_at),
        "close_reason": ticket.close_reason,
        "refund_kind": ticket.refund_kind,
        "refund_value": money(ticket.refund_value) if ticket.refund_kind in (
            "amount", "percent") else (
            str(int(ticket.refund_value)) if ticket.refund_value is not None else None),
        "refund_amount": money(ticket.refund_amount),
        "currency": order.currency,
        "escalated": ticket.escalated,
        "disputable_until": format_instant(ticket.disputable_until),
        "follows": ticket.follows.number if ticket.follows is not None else None,
        "order_refunded_amount": money(order.refunded_amount),
        "subscription": order.subscription,
    }
    if full:
        # a product's executed refund also refunded its support subscriptions (addons)
        view["support_refunds"] = [
            {"receipt": e.old, "amount": e.new, "currency": e.note}
            for e in ticket.events if e.kind == "support_refunded"]
        view["messages"] = [message_view(m) for m in ticket.messages]
        view["events"] = [
            {"at": format_instant(e.at), "recorded_at": format_instant(e.recorded_at),
             "actor_role": e.actor_role, "kind": e.kind, "old": e.old, "new": e.new,
             "note": e.note}
            for e in ticket.events
        ]
    return view


def order_view(order: Order) -> dict[str, Any]:
    """An order with the fields of an import line, plus what the gateway keeps about it."""
    return {
        "receipt": order.receipt,
        "vendor": order.vendor.nickname,
        "sku": order.product.sku,
        "title": order.product.title,
        "kind": order.product.kind,
        "recurring": order.product.recurring,
        "customer_email": order.customer_email,
        "customer_name": order.customer_name,
        "quantity": order.quantity,
        "amount": money(order.amount),
        "currency": order.currency,
        "purchased_at": format_instant(order.purchased_at),
        "payments": [{"at": format_instant(p.at), "amount": money(p.amount)}
                     for p in order.payments],
        "shipped": order.shipped,
        "shipped_at": format_instant(order.shipped_at),
        "return_info": order.return_info,
        "locale": order.locale,
        "shop_url": order.shop_url,
        "subscription": order.subscription,
        **({"covers_sku": order.covers_sku, "valid_until": format_instant(order.valid_until),
            "support_active": order.support_active} if order.covers_sku else {}),
        "refunded_amount": money(order.refunded_amount),
        "created_at": format_instant(order.created_at),
        "updated_at": format_instant(order.updated_at),
    }


def status_view(session: Session) -> dict[str, Any]:
    def count(query: Any) -> int:
        return int(session.execute(query).scalar_one())

    return {
        "open_tickets": count(select(func.count()).select_from(Ticket)
                              .where(Ticket.status == "open")),
        "outbox_pending": count(select(func.count()).select_from(OutboxMail)
                                .where(OutboxMail.state.in_(("pending", "deferred")))),
        "outbox_failed": count(select(func.count()).select_from(OutboxMail)
                               .where(OutboxMail.state == "failed")),
        "next_deadline": format_instant(next_deadline(session)),
    }
