"""Turn one outbox row into the bytes of its mail: history as of the event, links, headers.

The row names the event, the party and the newest message it reports (`upto_message_id`);
the ticket is rendered from the messages up to that one, so a mail rendered late (the relay
was down, the worker was busy) still shows the conversation as it was when the change
happened. Ticket and order details are read as they are at rendering time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.domain.facts import Role
from gateway.domain.links import Links, link_expiry
from gateway.domain.locales import pick_locale
from gateway.domain.settings import Settings
from gateway.domain.tokens import Tokens
from gateway.services.views import money
from outbound.message import build_message, message_id_for
from outbound.render import Renderer
from outbound.subjects import subject_for
from store.models import Attachment, Message, Order, OutboxMail, Product, Ticket, Vendor

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


class OutboxFields(Protocol):
    """What composing reads of an outbox row: an `OutboxMail`, or the columns a claim returned."""

    @property
    def id(self) -> int: ...
    @property
    def ticket_id(self) -> int | None: ...
    @property
    def order_id(self) -> int | None: ...
    @property
    def upto_message_id(self) -> int | None: ...
    @property
    def event(self) -> str: ...
    @property
    def notice_kind(self) -> str | None: ...
    @property
    def party(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class OrderFacts:
    id: int
    receipt: str
    title: str
    sku: str
    quantity: int
    amount: Decimal
    currency: str
    purchased_at: datetime
    customer_name: str
    customer_email: str
    vendor: str  # the vendor's nickname
    zone: str  # the vendor's time zone
    refunded_amount: Decimal


@dataclass(frozen=True)
class TicketFacts:
    number: int
    type: str
    status: str
    created_at: datetime
    created_by: str
    reason: str | None
    problem: str | None
    refund_kind: str | None
    refund_amount: Decimal | None
    process_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    escalated: bool
    escalation_note: str | None


@dataclass(frozen=True)
class AttachmentFacts:
    id: int
    filename: str
    size: int
    content_type: str


@dataclass(frozen=True)
class MessageFacts:
    id: int
    author_role: str
    author_email: str | None
    text: str
    created_at: datetime
    attachments: tuple[AttachmentFacts, ...]


@dataclass(frozen=True)
class EarlierMail:
    """Another outbox row to the same recipient on the same ticket (caps, digests, threading)."""

    id: int
    message_id: str | None
    state: str
    next_attempt_at: datetime | None
    sent_at: datetime | None


def ticket_data(ticket: TicketFacts) -> dict[str, Any]:
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


def order_data(order: OrderFacts) -> dict[str, Any]:
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


def comment_data(message: MessageFacts, attached_ids: frozenset[int] = frozenset()
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


def pick_attachments(attachments: Sequence[AttachmentFacts], data: Mapping[int, bytes | None],
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
        ticket, order = load_subject(session, row.ticket_id, row.order_id)
        party = Role(row.party)
        payload = row.payload or {}
        messages = load_history(session, row.ticket_id, row.upto_message_id) if ticket else []
        newest = messages[-1] if messages else None
        attachments = (pick_attachments(newest.attachments,
                                        _attachment_data(session, newest.id),
                                        self.settings.max_attachment_bytes)
                       if newest is not None and newest.attachments else [])
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
            "links": self._links(row, ticket, order, party, payload, now),
        }
        digest_of = payload.get("digest_of") or []
        if digest_of:
            ctx["reason_line_extra"] = self._digest_line(session, row, ticket, order, digest_of)
        rendered = self.renderer.render(row.event, row.party, row.locale, ctx)
        message_id = message_id_for(row.id, self.settings.mail_domain)
        first, previous = None, None
        if ticket is not None:
            if earlier is None:
                earlier = mail_to_recipient(session, row)
            first, previous = thread_of(earlier, row.id, self.settings.mail_domain)
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

    def _links(self, row: OutboxFields, ticket: TicketFacts | None, order: OrderFacts | None,
               party: Role,
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

    def _digest_line(self, session: Session, row: OutboxFields, ticket: TicketFacts | None,
                     order: OrderFacts | None, ids: Sequence[int]) -> str:
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


_TICKETS = Ticket.__table__
_ORDERS = Order.__table__
_VENDORS = Vendor.__table__
_PRODUCTS = Product.__table__
_MESSAGES = Message.__table__
_ATTACHMENTS = Attachment.__table__
_OUTBOX = OutboxMail.__table__

# Only the columns a mail shows, read with Core: a mail is rendered for every change, and
# whole ORM objects (a message's original text and HTML included) cost more than the render.
_ORDER_COLUMNS = (
    _ORDERS.c.id, _ORDERS.c.receipt, _PRODUCTS.c.title, _PRODUCTS.c.sku, _ORDERS.c.quantity,
    _ORDERS.c.amount, _ORDERS.c.currency, _ORDERS.c.purchased_at, _ORDERS.c.customer_name,
    _ORDERS.c.customer_email, _VENDORS.c.nickname.label("vendor"),
    _VENDORS.c.timezone.label("zone"), _ORDERS.c.refunded_amount,
)
_ORDER_JOIN = (_ORDERS.join(_VENDORS, _VENDORS.c.id == _ORDERS.c.vendor_id)
               .join(_PRODUCTS, _PRODUCTS.c.id == _ORDERS.c.product_id))
_TICKET_COLUMNS = tuple(_TICKETS.c[f.name] for f in fields(TicketFacts))
_SELECT_TICKET = (select(*_TICKET_COLUMNS, *_ORDER_COLUMNS)
                  .select_from(_TICKETS.join(_ORDER_JOIN, _ORDERS.c.id == _TICKETS.c.order_id))
                  .where(_TICKETS.c.id == bindparam("ticket_id")))
_SELECT_ORDER = select(*_ORDER_COLUMNS).select_from(_ORDER_JOIN).where(
    _ORDERS.c.id == bindparam("order_id"))
_SELECT_HISTORY = (
    select(_MESSAGES.c.id, _MESSAGES.c.author_role, _MESSAGES.c.author_email, _MESSAGES.c.text,
           _MESSAGES.c.created_at, _ATTACHMENTS.c.id.label("attachment_id"),
           _ATTACHMENTS.c.filename, _ATTACHMENTS.c.size, _ATTACHMENTS.c.content_type)
    .select_from(_MESSAGES.outerjoin(_ATTACHMENTS,
                                     _ATTACHMENTS.c.message_id == _MESSAGES.c.id))
    .where(_MESSAGES.c.ticket_id == bindparam("ticket_id"),
           _MESSAGES.c.id <= bindparam("upto"))
    .order_by(_MESSAGES.c.id, _ATTACHMENTS.c.id))
_SELECT_EARLIER = (
    select(_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.state, _OUTBOX.c.next_attempt_at,
           _OUTBOX.c.sent_at)
    .where(_OUTBOX.c.ticket_id == bindparam("ticket_id"),
           _OUTBOX.c.recipient == bindparam("recipient"), _OUTBOX.c.id != bindparam("id"))
    .order_by(_OUTBOX.c.id))


def load_subject(session: Session, ticket_id: int | None, order_id: int | None
                 ) -> tuple[TicketFacts | None, OrderFacts | None]:
    """The ticket (with its order), or only the order, a mail is about."""
    if ticket_id is not None:
        found = session.execute(_SELECT_TICKET, {"ticket_id": ticket_id}).first()
        if found is not None:
            split = len(_TICKET_COLUMNS)
            return TicketFacts(*found[:split]), OrderFacts(*found[split:])
    if order_id is None:
        return None, None
    found = session.execute(_SELECT_ORDER, {"order_id": order_id}).first()
    return None, (OrderFacts(*tuple(found)) if found is not None else None)


def load_history(session: Session, ticket_id: int | None, upto: int | None
                 ) -> list[MessageFacts]:
    """The ticket's messages up to `upto`, oldest first, with their attachments (no bytes)."""
    if ticket_id is None or upto is None:
        return []
    messages: list[MessageFacts] = []
    for mid, role, email, text, at, aid, filename, size, ctype in session.execute(
            _SELECT_HISTORY, {"ticket_id": ticket_id, "upto": upto}):
        if not messages or messages[-1].id != mid:
            messages.append(MessageFacts(mid, role, email, text, at, ()))
        if aid is not None:
            last = messages[-1]
            messages[-1] = replace(last, attachments=(
                *last.attachments, AttachmentFacts(aid, filename, size, ctype)))
    return messages


def _attachment_data(session: Session, message_id: int) -> dict[int, bytes | None]:
    rows = session.execute(select(_ATTACHMENTS.c.id, _ATTACHMENTS.c.data)
                           .where(_ATTACHMENTS.c.message_id == message_id))
    return {aid: data for aid, data in rows}


def mail_to_recipient(session: Session, row: OutboxFields) -> list[EarlierMail]:
    """The other outbox rows of this row's ticket to this row's recipient, oldest first."""
    if row.ticket_id is None:
        return []
    return [EarlierMail(*r) for r in session.execute(
        _SELECT_EARLIER, {"ticket_id": row.ticket_id, "recipient": row.recipient, "id": row.id})]


def thread_of(earlier: Sequence[EarlierMail], row_id: int, domain: str
              ) -> tuple[str | None, str | None]:
    """(first, previous) Message-IDs of this ticket's earlier mail to the same recipient.

    A row that went out inside a digest carries the digest's Message-ID, so the chain names
    mail that was sent; a row not rendered yet is named by its own stable id.
    """
    ids = [m.message_id or message_id_for(m.id, domain)
           for m in earlier if m.id < row_id and m.state != "failed"]
    if not ids:
        return None, None
    return ids[0], ids[-1]
