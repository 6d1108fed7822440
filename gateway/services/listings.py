"""What an operator reads: lists of inbound and outbound mail, addresses, vendors and keys.

Read-only queries (but `unsuppress`), each answering one `ticketgw … list|show` command with the
contract's JSON shapes. Lists are newest first and bounded by `limit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from gateway.domain.clock import format_instant
from gateway.domain.errors import NotFound, UserError
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.views import ticket_view
from store.models import (
    AddressState,
    ApiKey,
    InboundMail,
    Order,
    OutboxMail,
    Ticket,
    Vendor,
)

DEFAULT_LIMIT = 100
INBOUND_DECISIONS = ("applied", "ignored", "rejected", "failed")
OUTBOX_STATES = ("pending", "sent", "failed", "deferred")
TICKET_TYPES = ("refund", "cancellation", "tech_support")
TICKET_STATUSES = ("open", "closed")


def _one_of(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise UserError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}",
                        code="invalid_filter")
    return value


def _ticket_id(session: Session, number: int | None) -> int | None:
    if number is None:
        return None
    found = session.execute(select(Ticket.id).where(Ticket.number == number)).scalar()
    if found is None:
        raise NotFound(f"no ticket #{number}")
    return found


@dataclass(frozen=True)
class MailFilter:
    decision: str | None = None
    sender: str | None = None
    ticket: int | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT


def list_inbound(session: Session, wanted: MailFilter) -> list[dict[str, Any]]:
    """Recorded inbound mail, newest first, with the decision taken and why."""
    _one_of(wanted.decision, INBOUND_DECISIONS, "decision")
    query = (select(InboundMail.id, InboundMail.message_id, InboundMail.sender,
                    InboundMail.recipient, InboundMail.channel, InboundMail.received_at,
                    InboundMail.state, InboundMail.decision, InboundMail.reason,
                    InboundMail.error, Ticket.number)
             .outerjoin(Ticket, Ticket.id == InboundMail.ticket_id)
             .order_by(InboundMail.id.desc()).limit(wanted.limit))
    if wanted.decision:
        query = query.where(InboundMail.state == wanted.decision)
    if wanted.sender:
        query = query.where(func.lower(InboundMail.sender) == wanted.sender.strip().lower())
    ticket_id = _ticket_id(session, wanted.ticket)
    if ticket_id is not None:
        query = query.where(InboundMail.ticket_id == ticket_id)
    if wanted.since:
        query = query.where(InboundMail.received_at >= wanted.since)
    return [{
        "id": row.id, "message_id": row.message_id, "sender": row.sender,
        "recipient": row.recipient, "channel": row.channel,
        "received_at": format_instant(row.received_at), "decision": row.state,
        "detail": row.decision, "reason": row.reason, "ticket": row.number,
        "error": row.error,
    } for row in session.execute(query)]


@dataclass(frozen=True)
class OutboxFilter:
    state: str | None = None
    to: str | None = None
    ticket: int | None = None
    limit: int = DEFAULT_LIMIT


def list_outbox(session: Session, wanted: OutboxFilter) -> list[dict[str, Any]]:
    """Outbound mail, newest first; a deferred or failed one says why."""
    _one_of(wanted.state, OUTBOX_STATES, "state")
    query = (select(OutboxMail.id, OutboxMail.event, OutboxMail.party, OutboxMail.recipient,
                    OutboxMail.state, OutboxMail.attempts, OutboxMail.last_error,
                    OutboxMail.next_attempt_at, OutboxMail.created_at, OutboxMail.sent_at,
                    OutboxMail.message_id, Ticket.number)
             .outerjoin(Ticket, Ticket.id == OutboxMail.ticket_id)
             .order_by(OutboxMail.id.desc()).limit(wanted.limit))
    if wanted.state:
        query = query.where(OutboxMail.state == wanted.state)
    if wanted.to:
        query = query.where(func.lower(OutboxMail.recipient) == wanted.to.strip().lower())
    ticket_id = _ticket_id(session, wanted.ticket)
    if ticket_id is not None:
        query = query.where(OutboxMail.ticket_id == ticket_id)
    return [{
        "id": row.id, "event": row.event, "party": row.party, "to": row.recipient,
        "state": row.state, "attempts": row.attempts,
        "reason": row.last_error if row.state in ("deferred", "failed") else None,
        "next_attempt_at": format_instant(row.next_attempt_at),
        "created_at": format_instant(row.created_at), "sent_at": format_instant(row.sent_at),
        "message_id": row.message_id, "ticket": row.number,
    } for row in session.execute(query)]


def address_view(session: Session, address: str) -> dict[str, Any]:
    """What the gateway knows of one address: bouncing, suppressed, its rate window."""
    wanted = address.strip().lower()
    row = session.get(AddressState, wanted)
    sent = session.execute(
        select(func.count(), func.max(OutboxMail.sent_at))
        .where(func.lower(OutboxMail.recipient) == wanted, OutboxMail.state == "sent")).one()
    received = session.execute(
        select(func.count()).select_from(InboundMail)
        .where(func.lower(InboundMail.sender) == wanted)).scalar_one()
    return {
        "address": wanted,
        "known": row is not None or bool(sent[0]) or bool(received),
        "bouncing_since": format_instant(row.bouncing_since) if row else None,
        "suppressed_since": format_instant(row.suppressed_since) if row else None,
        "suppressed": bool(row and row.suppressed_since),
        "mails_received": received,
        "mails_sent": sent[0],
        "last_sent_at": format_instant(sent[1]),
    }


def unsuppress(session: Session, ctx: ServiceContext, actor: Actor,
               address: str) -> dict[str, Any]:
    """Mail to the address is sent again (after the owner fixed their mailbox)."""
    wanted = address.strip().lower()
    row = session.get(AddressState, wanted, with_for_update=True)
    if row is None or (row.suppressed_since is None and row.bouncing_since is None):
        raise NotFound(f"{wanted} is not suppressed or bouncing; nothing to do")
    old = format_instant(row.suppressed_since or row.bouncing_since)
    row.suppressed_since = None
    row.bouncing_since = None
    journal.record(session, ctx, actor, "address_unsuppressed", old=old, new=wanted)
    return address_view(session, wanted)


def vendor_view(session: Session, vendor: Vendor) -> dict[str, Any]:
    open_tickets = session.execute(
        select(func.count()).select_from(Ticket).join(Order)
        .where(Order.vendor_id == vendor.id, Ticket.status == "open")).scalar_one()
    return {
        "nickname": vendor.nickname, "email": vendor.account_email,
        "cs_email": vendor.cs_email, "timezone": vendor.timezone, "locale": vendor.locale,
        "partial_refunds": vendor.partial_refunds_enabled, "may_respond": vendor.may_respond,
        "dispute_count": vendor.dispute_count, "open_tickets": open_tickets,
        "created_at": format_instant(vendor.created_at),
    }


def list_vendors(session: Session) -> list[dict[str, Any]]:
    return [vendor_view(session, v)
            for v in session.execute(select(Vendor).order_by(Vendor.nickname)).scalars()]


def list_keys(session: Session) -> list[dict[str, Any]]:
    """API keys by prefix (the key itself was shown once, at creation, and is not kept)."""
    rows = session.execute(
        select(ApiKey, Vendor.nickname).outerjoin(Vendor, Vendor.id == ApiKey.vendor_id)
        .order_by(ApiKey.id)).all()
    return [{"id": key.id, "prefix": key.prefix, "vendor": nick, "staff": key.staff,
             "created_at": format_instant(key.created_at),
             "revoked_at": format_instant(key.revoked_at)} for key, nick in rows]


@dataclass(frozen=True)
class TicketFilter:
    open_only: bool = False
    vendor: str | None = None
    type: str | None = None
    status: str | None = None
    escalated: bool = False
    receipt: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _ticket_query(wanted: TicketFilter) -> Select[Ticket]:
    _one_of(wanted.type, TICKET_TYPES, "type")
    _one_of(wanted.status, TICKET_STATUSES, "status")
    query = select(Ticket).join(Order, Order.id == Ticket.order_id).order_by(Ticket.number)
    if wanted.open_only:
        query = query.where(Ticket.status == "open")
    if wanted.status:
        query = query.where(Ticket.status == wanted.status)
    if wanted.type:
        query = query.where(Ticket.type == wanted.type)
    if wanted.escalated:
        query = query.where(Ticket.escalated.is_(True))
    if wanted.receipt:
        query = query.where(Order.receipt == wanted.receipt.strip().upper())
    if wanted.vendor:
        query = query.join(Vendor, Vendor.id == Order.vendor_id).where(
            Vendor.nickname == wanted.vendor.strip().lower())
    if wanted.since:
        query = query.where(Ticket.created_at >= wanted.since)
    if wanted.until:
        query = query.where(Ticket.created_at < wanted.until)
    return query


def list_tickets(session: Session, wanted: TicketFilter) -> list[dict[str, Any]]:
    if wanted.since and wanted.until and wanted.until <= wanted.since:
        raise UserError("--until must be later than --since", code="invalid_filter")
    found = session.execute(_ticket_query(wanted)).unique().scalars().all()
    return [ticket_view(t, full=False) for t in found]

