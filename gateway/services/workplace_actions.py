"""What the workplace changes, one action in the caller's transaction: a ticket opened from an
order, a vendor's settings and contact details, a review marked, a right revoked or restored.

Ticket rules are not repeated here: opening goes through `tickets.open_ticket`, settings
through `vendors.update_vendor`, privileges through `vendors.set_privilege`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.addresses import normalise_email
from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import TicketType
from gateway.domain.texts import Text, _
from gateway.services import journal, tickets, vendors
from gateway.services.context import Actor, ServiceContext
from gateway.services.workplace import find_order_in
from store.models import Event, EventReview, Vendor

_PHONE = re.compile(r"^[0-9+()./ -]{3,40}(?: *(?:ext\.?|x) *[0-9]{1,6})?$", re.IGNORECASE)


def open_from_order(session: Session, ctx: ServiceContext, vendor_id: int | None, actor: Actor,
                    receipt: str, ticket_type: str, reason: str | None,
                    comment: str | None) -> int:
    """Open a ticket on an order the scope may see (the seed's "View/open ticket for
    transaction"); returns its number (a converted tech-support ticket's, when it was)."""
    order = find_order_in(session, vendor_id, receipt)
    try:
        kind = TicketType(ticket_type)
    except ValueError:
        raise UserError(_("choose a ticket type: refund, cancellation or tech support"),
                        code="invalid_field") from None
    return tickets.open_ticket(session, ctx, order.receipt, kind, actor, reason=reason,
                               comment=comment).number


@dataclass(frozen=True)
class VendorSettings:
    """The settings form as posted; an empty text clears an optional field."""

    cs_email: str = ""
    timezone: str = "UTC"
    locale: str = "en"
    partial_refunds: bool = False
    contact_phone: str = ""
    contact_site: str = ""
    contact_hours: str = ""


def _one_line(value: str, limit: int, refusal: Text) -> str | None:
    """`value` stripped, or None when empty; `refusal` (a whole sentence naming the field)
    when it is more than one line or longer than `limit`."""
    text = value.strip()
    if any(ord(c) < 32 for c in text) or len(text) > limit:
        raise UserError(refusal, code="invalid_field")
    return text or None


def _contact(form: VendorSettings) -> dict[str, str | None]:
    phone = _one_line(form.contact_phone, 60, _(
        "the phone number must be one line of at most %(limit)s characters", limit=60))
    if phone and not _PHONE.match(phone):
        raise UserError(_("write the phone number with digits, spaces, + - ( ) . / and an "
                          "optional extension, e.g. +1 555 0100 ext 12"), code="invalid_field")
    site = _one_line(form.contact_site, 2000, _(
        "the support site must be one line of at most %(limit)s characters", limit=2000))
    if site:
        parts = urlsplit(site)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(_("the support site must be a web address starting with "
                              "https://"), code="invalid_field")
    return {"contact_phone": phone, "contact_site": site,
            "contact_hours": _one_line(form.contact_hours, 200, _(
                "the support hours must be one line of at most %(limit)s characters",
                limit=200))}


def update_settings(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
                    form: VendorSettings) -> Vendor:
    """A vendor's settings as the form has them; every change is in the event log, and a
    new time zone recomputes the open deadlines (`vendors.update_vendor`)."""
    contact = _contact(form)
    cs_email = normalise_email(form.cs_email, _("the customer-service address")) if (
        form.cs_email.strip()) else None
    vendor = vendors.update_vendor(
        session, ctx, actor, nickname, cs_email=cs_email, timezone=form.timezone.strip() or None,
        locale=form.locale.strip() or None, partial_refunds=form.partial_refunds)
    changes = dict(contact)
    if cs_email is None:
        changes["cs_email"] = None  # update_vendor leaves an empty field alone: cleared here
    for name, value in changes.items():
        old = getattr(vendor, name)
        if old != value:
            setattr(vendor, name, value)
            journal.record(session, ctx, actor, f"vendor_{name}", vendor_id=vendor.id,
                           old=old, new=value)
    return vendor


def mark_reviewed(session: Session, ctx: ServiceContext, event_id: int, staff: str) -> None:
    """Staff looked at one event of the review queue; marking it twice changes nothing."""
    if session.get(Event, event_id) is None:
        raise NotFound(_("no event %(id)s", id=event_id))
    if session.execute(select(EventReview.event_id).where(
            EventReview.event_id == event_id)).first() is None:
        session.add(EventReview(event_id=event_id, reviewed_at=ctx.recorded_at,
                                reviewed_by=staff))


def set_right(session: Session, ctx: ServiceContext, actor: Actor, nickname: str,
              allowed: bool) -> Vendor:
    """Staff revoke or restore a vendor's right to answer refund and cancellation tickets."""
    return vendors.set_privilege(session, ctx, actor, nickname, allowed)
