"""Turn one outbox row into the bytes of its mail: its locale, context, links and headers.

The row names the event, the party and the newest message it reports; `outbound.history`
reads what the mail shows, `outbound.render` writes it and `outbound.message` makes the bytes.
The recipient's locale is picked here, once, from the row, and handed down as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.domain.clock import parse_instant
from gateway.domain.facts import Role
from gateway.domain.links import Links, link_expiry
from gateway.domain.locales import pick_locale
from gateway.domain.settings import Settings
from gateway.domain.tokens import Tokens
from gateway.services.journal import new_message_id
from gateway.services.views import money
from outbound.history import (
    EarlierMail,
    MailAttachment,
    MailComment,
    MailOrder,
    MailTicket,
    OutboxFields,
    attachment_data,
    held_events,
    load_history,
    load_subject,
    mail_to_recipient,
)
from outbound.message import build_message
from outbound.render import Renderer
from outbound.wording import digest_summary, subject_for


@dataclass(frozen=True)
class Composed:
    """The bytes of one mail and the Message-ID they carry."""

    raw: bytes
    message_id: str


def ticket_data(ticket: MailTicket) -> dict[str, Any]:
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


def order_data(order: MailOrder) -> dict[str, Any]:
    return {
        "receipt": order.receipt,
        "title": order.title,
        "sku": order.sku,
        "quantity": order.quantity,
        "amount": money(order.amount),
        "currency": order.currency,
        "purchased_at": order.purchased_at,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "vendor": order.vendor,
        "refunded_amount": money(order.refunded_amount),
    }


def comment_data(message: MailComment, attached_ids: frozenset[int] = frozenset()
                 ) -> dict[str, Any]:
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


def pick_attachments(attachments: Sequence[MailAttachment], data: Mapping[int, bytes | None],
                     limit: int) -> list[tuple[int, str, str, bytes]]:
    """The newest message's attachments that fit in `limit` bytes together (SPEC 11.12).

    Taken in order; one that does not fit is listed instead, and smaller later ones may
    still fit. Attachments stored without data (over the intake limit) are only listed.
    """
    chosen: list[tuple[int, str, str, bytes]] = []
    total = 0
    for attachment in attachments:
        blob = data.get(attachment.id)
        if blob is None or total + len(blob) > limit:
            continue
        total += len(blob)
        chosen.append((attachment.id, attachment.filename, attachment.content_type, blob))
    return chosen


class Composer:
    """Renders outbox rows for one deployment; built once per process (the renderer caches)."""

    def __init__(self, settings: Settings, tokens: Tokens, renderer: Renderer | None = None):
        self.settings = settings
        self.links = Links(tokens, settings.base_url, settings.mail_domain)
        self.renderer = renderer or Renderer()

    def compose(self, session: Session, row: OutboxFields, now: datetime, *,
                earlier: Sequence[EarlierMail] | None = None) -> Composed:
        """The mail of `row` as of `now`. `earlier` is the recipient's other mail on the ticket
        when the caller already has it (`mail_to_recipient`); otherwise it is read here."""
        locale = pick_locale(row.locale)  # the one place: everything below trusts it
        ticket, order = load_subject(session, row.ticket_id, row.order_id)
        party = Role(row.party)
        payload = row.payload or {}
        messages = load_history(session, row.ticket_id, row.upto_message_id) if ticket else []
        newest = messages[-1] if messages else None
        attachments = self._attachments(session, newest)
        attached = frozenset(a[0] for a in attachments)
        ctx: dict[str, Any] = {
            "ticket": ticket_data(ticket) if ticket is not None else None,
            "order": order_data(order) if order is not None else None,
            "newest": comment_data(newest, attached) if newest is not None else None,
            "history": [comment_data(m) for m in messages],
            "zone": order.zone if order is not None else "UTC",
            "recipient": row.recipient,
            "notice_kind": row.notice_kind,
            "refused": payload.get("refused"),
            "staff_explanation": ticket.escalation_note if ticket is not None else None,
            "account": payload.get("account"),  # a vendor's standing (signin, revoked, disputed)
            "links": self._links(row, ticket, order, party, payload, now),
        }
        digest_of = payload.get("digest_of") or []
        if digest_of:
            ctx["reason_line_extra"] = self._digest_line(
                session, row.event, locale, ticket, order, digest_of)
        rendered = self.renderer.render(row.event, row.party, locale, ctx)
        # written with the row (journal.new_message_id); a row written before that has none
        # and gets one here, which the caller stores with the bytes
        message_id = row.message_id or new_message_id(self.settings.mail_domain)
        first, previous = None, None
        if ticket is not None:
            if earlier is None:
                earlier = mail_to_recipient(session, row)
            first, previous = thread_of(earlier, row.id)
        raw = build_message(
            rendered,
            from_addr=self.links.support_address(),
            to_addr=row.recipient,
            to_name=order.customer_name if order is not None and party is Role.CUSTOMER else None,
            reply_to=(self.links.reply_address(ticket.number, party) if ticket is not None
                      else self.links.support_address()),
            locale=locale,
            message_id=message_id,
            ticket_number=ticket.number if ticket is not None else None,
            event=row.event,
            in_reply_to=previous,
            references=[m for m in (first,) if m],
            attachments=[(name, ctype, data) for _, name, ctype, data in attachments],
            date=now,
        )
        return Composed(raw=raw, message_id=message_id)

    def _attachments(self, session: Session, newest: MailComment | None
                     ) -> list[tuple[int, str, str, bytes]]:
        """The newest message's files that go with the mail (`pick_attachments`)."""
        if newest is None or not newest.attachments:
            return []
        return pick_attachments(newest.attachments, attachment_data(session, newest.id),
                                self.settings.max_attachment_bytes)

    def _links(self, row: OutboxFields, ticket: MailTicket | None, order: MailOrder | None,
               party: Role, payload: Mapping[str, Any], now: datetime) -> dict[str, str | None]:
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
        links.update(self._workplace_links(row, order, party, payload))
        return links

    def _workplace_links(self, row: OutboxFields, order: MailOrder | None, party: Role,
                         payload: Mapping[str, Any]) -> dict[str, str | None]:
        """The sign-in link, and workplace pages: the sale's order (where the vendor opens a
        ticket), the vendor's standing, the staff review queue. Only the sign-in link is
        signed; the others ask the reader to sign in."""
        if row.event == "signin" and "signin" in payload:
            return {"signin": self.links.signin_page(
                int(payload["signin"]), party, parse_instant(str(payload["expires"])))}
        if row.event == "sale" and order is not None and party is Role.VENDOR:
            return {"order_page": self.links.workplace(f"orders/{order.receipt}")}
        if row.event in ("disputed", "revoked"):
            return {"workplace": self.links.workplace(
                "review" if party is Role.STAFF else "standing")}
        return {}

    def _digest_line(self, session: Session, event: str, locale: str, ticket: MailTicket | None,
                     order: MailOrder | None, ids: Sequence[int]) -> str:
        """The summary a digest opens with: the subjects of the held mail and of its own."""
        subjects = [subject_for(
            held, locale,
            ticket_number=ticket.number if ticket is not None else None,
            ticket_type=ticket.type if ticket is not None else None,
            receipt=order.receipt if order is not None else None)
            for held in [*held_events(session, ids), event]]
        return digest_summary(subjects, locale)


def thread_of(earlier: Sequence[EarlierMail], row_id: int) -> tuple[str | None, str | None]:
    """(first, previous) Message-IDs of this ticket's earlier mail to the same recipient.

    A row that went out inside a digest carries the digest's Message-ID, so the chain names
    mail that was sent; a row not sent yet is named by the id written with it.
    """
    ids = [m.message_id for m in earlier
           if m.id < row_id and m.state != "failed" and m.message_id]
    if not ids:
        return None, None
    return ids[0], ids[-1]
