"""A vendor's standing: the mails at each dispute and at revocation, and what the workplace
shows of it (disputes counted, whether the right to answer is revoked, why and by whom)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.facts import Role
from gateway.services import journal
from gateway.services.context import ServiceContext
from store.models import Event, OutboxMail, Ticket, Vendor


def account_mail(session: Session, ctx: ServiceContext, event: str, party: Role,
                 recipient: str, locale: str, payload: dict[str, Any]) -> None:
    """An outbox row about a vendor's account, not about one ticket or order."""
    session.add(OutboxMail(
        ticket_id=None, order_id=None, event=event, party=str(party), recipient=recipient,
        locale=locale, payload=payload, state="pending", attempts=0,
        message_id=journal.new_message_id(ctx.mail_domain), created_at=ctx.recorded_at,
        next_attempt_at=ctx.recorded_at))


def _account(ctx: ServiceContext, vendor: Vendor, note: str | None = None) -> dict[str, Any]:
    return {"vendor": vendor.nickname, "disputes": vendor.dispute_count,
            "limit": ctx.policy.dispute_limit, "revoked": not vendor.may_respond, "note": note}


def dispute_mail(session: Session, ctx: ServiceContext, ticket: Ticket, vendor: Vendor,
                 event: int) -> None:
    """The vendor is told of each dispute: how many of how many before its right to answer
    refund and cancellation tickets is revoked (`vendor` already counts this one)."""
    journal.notify(session, ctx, ticket, "disputed", (Role.VENDOR,), event=event,
                   payload={"account": _account(ctx, vendor)})


def revoked_mails(session: Session, ctx: ServiceContext, vendor: Vendor, by: Role,
                  note: str | None) -> None:
    """At revocation the vendor is told, and staff too when the system revoked it (staff who
    revoke by hand know already)."""
    payload = {"account": _account(ctx, vendor, note)}
    account_mail(session, ctx, "revoked", Role.VENDOR, vendor.mail_address, vendor.locale,
                 payload)
    if by is not Role.STAFF:
        account_mail(session, ctx, "revoked", Role.STAFF, ctx.staff_email, "en", payload)


@dataclass(frozen=True)
class Dispute:
    at: datetime
    number: int
    change: str  # the type/status the vendor's change left, then the restored one


@dataclass(frozen=True)
class Standing:
    nickname: str
    may_respond: bool
    disputes: int
    limit: int
    changed_at: datetime | None  # the last revocation or restoration
    changed_by: str | None
    reason: str | None
    recent: tuple[Dispute, ...]


def standing(session: Session, ctx: ServiceContext, vendor: Vendor, recent: int = 20
             ) -> Standing:
    """Disputes counted, the right to answer and its last change, the newest disputes."""
    last = session.execute(
        select(Event.at, Event.actor_role, Event.note).where(
            Event.kind == "privilege", Event.vendor_id == vendor.id)
        .order_by(Event.id.desc()).limit(1)).first()
    disputes = session.execute(
        select(Event.at, Ticket.number, Event.old, Event.new)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(Event.kind == "dispute", Ticket.vendor_id == vendor.id)
        .order_by(Event.id.desc()).limit(recent)).all()
    return Standing(
        nickname=vendor.nickname, may_respond=vendor.may_respond,
        disputes=vendor.dispute_count, limit=ctx.policy.dispute_limit,
        changed_at=last.at if last else None, changed_by=last.actor_role if last else None,
        reason=last.note if last else None,
        recent=tuple(Dispute(at, number, f"{old or ''} → {new or ''}")
                     for at, number, old, new in disputes))
