"""Turn one outbox row into the bytes of its mail: history as of the event, links, headers.

The row names the event, the party and the newest message it reports (`upto_message_id`);
the ticket is rendered from the messages up to that one, so a mail rendered late (the relay
was down, the worker was busy) still shows the conversation as it was when the change
happened. Ticket and order details are read as they are at rendering time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.facts import Role
from gateway.domain.links import Links, link_expiry
from gateway.domain.settings import Settings
from gateway.domain.tokens import Tokens
from gateway.services.views import money
from outbound.message import build_message, message_id_for
from outbound.render import Renderer
from outbound.subjects import pick_locale, subject_for
from store.models import Message, Order, OutboxMail, Ticket

# The line a digest starts with (SPEC 11.10: capped mail is held, then sent as one).
DIGEST_INTRO: Mapping[str, str] = {
    "en": "To keep your inbox calm, {count} updates on this ticket were held back and are"
    " summed up in this one email:",
    "fr": "Pour ne pas encombrer votre boîte, {count} mises à jour de ce ticket ont été"
    " regroupées dans ce seul courriel :",
    "de": "Damit Ihr Posteingang nicht überläuft, wurden {count} Aktualisierungen dieses"
    " Tickets in dieser einen E-Mail zusammengefasst:",
    "pt": "Para não lotar sua caixa de entrada, {count} atualizações deste tíquete foram"
    " reunidas neste único e-mail:",
}


@dataclass(frozen=True)
class Composed:
    raw: bytes
    message_id: str


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "type": ticket.type,
        "status": ticket.status,
        "created_at": ticket.created_at,
        "created_by": ticket.created_by,
        "reason": ticket.reason,
        "problem": ticket.problem,
        "refund_kind": ticket.refund_kind,
        "refund_amount": money(ticket.refund_amount),
        "process_at": ticket.process_at,
        "closed_at": ticket.closed_at,
        "close_reason": ticket.close_reason,
        "escalated": ticket.escalated,
    }


def order_data(order: Order) -> dict[str, Any]:
    return {
        "receipt": order.receipt,
        "title": order.product.title,
        "sku": order.product.sku,
        "quantity": order.quantity,
        "amount": money(order.amount),
        "currency": order.currency,
        "purchased_at": order.purchased_at,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "vendor": order.vendor.nickname,
        "refunded_amount": money(order.refunded_amount),
    }


def comment_data(message: Message, attached_ids: frozenset[int] = frozenset()) -> dict[str, Any]:
    return {
        "author_role": message.author_role,
        "author_email": message.author_email or "",
        "text": message.text,
        "created_at": message.created_at,
        "attachments": [
            {"filename": a.filename, "size": a.size, "content_type": a.content_type,
             "attached": a.id in attached_ids}
            for a in message.attachments
        ],
    }


def pick_attachments(message: Message, limit: int) -> list[tuple[int, str, str, bytes]]:
    """The newest message's attachments that fit in `limit` bytes together (SPEC 11.12).

    Taken in order; one that does not fit is listed instead, and smaller later ones may
    still fit. Attachments stored without data (over the intake limit) are only listed.
    """
    chosen: list[tuple[int, str, str, bytes]] = []
    total = 0
    for attachment in message.attachments:
        data = attachment.data
        if data is None or total + len(data) > limit:
            continue
        total += len(data)
        chosen.append((attachment.id, attachment.filename, attachment.content_type, data))
    return chosen


class Composer:
    """Renders outbox rows for one deployment; built once per process (the renderer caches)."""

    def __init__(self, settings: Settings, tokens: Tokens, renderer: Renderer | None = None):
        self.settings = settings
        self.links = Links(tokens, settings.base_url, settings.mail_domain)
        self.renderer = renderer or Renderer()

    def compose(self, session: Session, row: OutboxMail, now: datetime) -> Composed:
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        order = ticket.order if ticket is not None else (
            session.get(Order, row.order_id) if row.order_id is not None else None)
        party = Role(row.party)
        payload = row.payload or {}
        messages = _history(ticket, row.upto_message_id)
        newest = messages[-1] if messages else None
        attachments = pick_attachments(newest, self.settings.max_attachment_bytes) if newest else []
        attached = frozenset(a[0] for a in attachments)
        ctx: dict[str, Any] = {
            "ticket": ticket_data(ticket) if ticket is not None else None,
            "order": order_data(order) if order is not None else None,
            "newest": comment_data(newest, attached) if newest is not None else None,
            "history": [comment_data(m) for m in messages],
            "zone": order.vendor.timezone if order is not None else "UTC",
            "recipient": row.recipient,
            "notice_kind": row.notice_kind,
            "refused": payload.get("refused"),
            "staff_explanation": ticket.escalation_note if ticket is not None else None,
            "links": self._links(row, ticket, order, party, payload, now),
        }
        digest_of = payload.get("digest_of") or []
        if digest_of:
            ctx["reason_line_extra"] = self._digest_line(session, row, ticket, order, digest_of)
        rendered = self.renderer.render(row.event, row.party, row.locale, ctx)
        message_id = message_id_for(row.id, self.settings.mail_domain)
        first, previous = (_thread(session, row, self.settings.mail_domain)
                           if ticket is not None else (None, None))
        reply_to = (self.links.reply_address(ticket.number, party) if ticket is not None
                    else self.links.support_address())
        raw = build_message(
            rendered,
            from_addr=self.links.support_address(),
            to_addr=row.recipient,
            to_name=order.customer_name if order is not None and party is Role.CUSTOMER else None,
            reply_to=reply_to,
            locale=pick_locale(row.locale),
            message_id=message_id,
            ticket_number=ticket.number if ticket is not None else None,
            event=row.event,
            in_reply_to=previous,
            references=[m for m in (first,) if m],
            attachments=[(name, ctype, data) for _, name, ctype, data in attachments],
            date=now,
        )
        return Composed(raw=raw, message_id=message_id)

    def _links(self, row: OutboxMail, ticket: Ticket | None, order: Order | None, party: Role,
               payload: Mapping[str, Any], now: datetime) -> dict[str, str | None]:
        expires = link_expiry(now, self.settings.link_ttl_days)
        links: dict[str, str | None] = {}
        if ticket is not None:
            if party in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
                links["ticket"] = self.links.ticket_page(ticket.number, party, expires)
            if party is Role.CUSTOMER and payload.get("disputable"):
                links["dispute"] = self.links.action("dispute", ticket.number, party, expires)
            if (party is Role.CUSTOMER and row.event == "inactivity_warning"
                    and ticket.type == "tech_support" and ticket.status == "open"):
                links["to_refund"] = self.links.action("to_refund", ticket.number, party, expires)
            if row.notice_kind == "confirm_request":
                links["confirm"] = self.links.action("confirm", ticket.number, party, expires)
        if order is not None and row.event == "receipt" and party is Role.CUSTOMER:
            links["receipt"] = self.links.receipt_page(order.id, expires)
        return links

    def _digest_line(self, session: Session, row: OutboxMail, ticket: Ticket | None,
                     order: Order | None, ids: Sequence[int]) -> str:
        held = session.execute(
            select(OutboxMail.event).where(OutboxMail.id.in_(list(ids))).order_by(OutboxMail.id)
        ).scalars().all()
        locale = pick_locale(row.locale)
        lines = []
        for event in [*held, row.event]:
            lines.append("- " + subject_for(
                event, locale,
                ticket_number=ticket.number if ticket is not None else None,
                ticket_type=ticket.type if ticket is not None else None,
                receipt=order.receipt if order is not None else None))
        intro = DIGEST_INTRO.get(locale, DIGEST_INTRO["en"]).format(count=len(lines))
        return intro + "\n" + "\n".join(lines)


def _history(ticket: Ticket | None, upto: int | None) -> list[Message]:
    if ticket is None or upto is None:
        return []
    return [m for m in ticket.messages if m.id <= upto]


def _thread(session: Session, row: OutboxMail, domain: str) -> tuple[str | None, str | None]:
    """(first, previous) Message-IDs of this ticket's earlier mail to the same recipient.

    A row that went out inside a digest carries the digest's Message-ID, so the chain names
    mail that was sent; a row not rendered yet is named by its own stable id.
    """
    earlier = session.execute(
        select(OutboxMail.id, OutboxMail.message_id)
        .where(OutboxMail.ticket_id == row.ticket_id, OutboxMail.recipient == row.recipient,
               OutboxMail.id < row.id, OutboxMail.state != "failed")
        .order_by(OutboxMail.id)
    ).all()
    if not earlier:
        return None, None
    ids = [mid or message_id_for(oid, domain) for oid, mid in earlier]
    return ids[0], ids[-1]
