"""Turn one outbox row into the bytes of its mail: its locale, context, links and headers.

The row names the event, the party and the newest message it reports; `outbound.history`
reads what the mail shows, `outbound.render` writes it and `outbound.message` makes the bytes.
The recipient's locale is picked here, once, from the row, and handed down as it is.

A mail says what was true when its change happened, however late it is rendered: the ticket
as the change left it (the state written with the row, `gateway.services.mail_state`), the
change as its event records it, and what the reader could do then (`#commands`, one-click
links) by the rules as of that instant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.domain.actions import allowed_actions
from gateway.domain.clock import parse_instant
from gateway.domain.facts import Action, OrderFacts, Role
from gateway.domain.links import Links, link_expiry
from gateway.domain.locales import pick_locale
from gateway.domain.policy import Policy, policy_for
from gateway.domain.settings import Settings
from gateway.domain.tokens import Tokens
from gateway.services import i18n, mail_state
from gateway.services.journal import new_message_id
from gateway.services.mail_state import MailState
from gateway.services.views import money
from outbound.history import (
    EarlierMail,
    MailAttachment,
    MailComment,
    MailOrder,
    MailTicket,
    OutboxFields,
    as_of,
    attachment_data,
    held_events,
    latest_bill,
    load_event,
    load_history,
    load_subject,
    mail_to_recipient,
)
from outbound.message import build_message
from outbound.render import Renderer
from outbound.sentences import change_line, command_lines, from_name, return_line
from outbound.wording import digest_summary, subject_for

# What a mail lists as `#commands`, in this order: replying is the mail itself, and only
# staff reopen (on the ticket page or by the command line).
_COMMAND_ORDER: Final = (Action.CLOSE, Action.REFUND, Action.TECHSUPPORT, Action.FULL,
                         Action.PARTIAL, Action.PERCENT, Action.QUANTITY, Action.RETURNED,
                         Action.ESCALATE, Action.AGREE, Action.DISPUTE)


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
        "title": ticket.title,
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
        # a mail matched by subject token and From only: that sender may be anyone (SPEC 8)
        "unverified": message.source == "email" and message.verified is False,
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
        # the rules of this deployment: what a reader may do is listed in every mail
        self.policy: Policy = policy_for(settings.policy, weekend_pause=settings.weekend_pause,
                                         dispute_limit=settings.dispute_limit)

    def compose(self, session: Session, row: OutboxFields, now: datetime, *,
                earlier: Sequence[EarlierMail] | None = None) -> Composed:
        """The mail of `row` as of its change, written at `now`. `earlier` is the recipient's
        other mail on the ticket when the caller already has it (`mail_to_recipient`);
        otherwise it is read here."""
        locale = pick_locale(row.locale)  # the one place: everything below trusts it
        ticket, order = load_subject(session, row.ticket_id, row.order_id)
        party = Role(row.party)
        payload = row.payload or {}
        state = _state(payload, ticket, order)
        if state is not None and ticket is not None and order is not None:
            ticket, order = as_of(ticket, order, state.columns, state.refunded_amount)
        messages = load_history(session, row.ticket_id, row.upto_message_id) if ticket else []
        newest = messages[-1] if messages else None
        attachments = self._attachments(session, newest)
        allowed = self._allowed(session, party, order, state)
        ctx = self._context(session, row, locale, ticket, order, messages, attachments, now)
        ctx.update(self._as_of_event(session, row, locale, party, ticket, order, state, allowed))
        ctx["links"] = self._links(row, ticket, order, party, payload, now, allowed)
        rendered = self.renderer.render(row.event, row.party, locale, ctx)
        # written with the row (journal.new_message_id); a row written before that has none
        # and gets one here, which the caller stores with the bytes
        message_id = row.message_id or new_message_id(self.settings.mail_domain)
        parent: str | None = None
        chain: list[str] = []
        if ticket is not None:
            if earlier is None:
                earlier = mail_to_recipient(session, row)
            parent, chain = threading_of(earlier, row, newest)
        raw = build_message(
            rendered,
            from_addr=self.links.support_address(),
            from_name=self._from_name(locale, party, order),
            to_addr=row.recipient,
            to_name=order.customer_name if order is not None and party is Role.CUSTOMER else None,
            reply_to=(self.links.reply_address(ticket.number, party) if ticket is not None
                      else self.links.support_address()),
            locale=locale,
            message_id=message_id,
            ticket_number=ticket.number if ticket is not None else None,
            event=row.event,
            in_reply_to=parent,
            references=chain,
            attachments=[(name, ctype, data) for _, name, ctype, data in attachments],
            date=now,
        )
        return Composed(raw=raw, message_id=message_id)

    def _context(self, session: Session, row: OutboxFields, locale: str,
                 ticket: MailTicket | None, order: MailOrder | None,
                 messages: Sequence[MailComment],
                 attachments: Sequence[tuple[int, str, str, bytes]], now: datetime
                 ) -> dict[str, Any]:
        """What every mail shows: ticket, order, newest comment and the history."""
        newest = messages[-1] if messages else None
        attached = frozenset(a[0] for a in attachments)
        payload = row.payload or {}
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
            "support_refunds": payload.get("support_refunds") or (),  # `processed`, addons
            "vendor_tips": self.policy.vendor_tips,  # the vendor's `opened`, addons
        }
        digest_of = payload.get("digest_of") or []
        if digest_of:
            ctx["reason_line_extra"] = self._digest_line(
                session, row.event, locale, ticket, order, digest_of)
        return ctx

    def _as_of_event(self, session: Session, row: OutboxFields, locale: str, party: Role,
                     ticket: MailTicket | None, order: MailOrder | None,
                     state: MailState | None, allowed: frozenset[Action]) -> dict[str, Any]:
        """What the mail says about its moment: the change its event records, the commands
        its reader could use then, when an idle ticket closes, what to do with goods."""
        out: dict[str, Any] = {"commands": command_lines(
            [a for a in _COMMAND_ORDER if a in allowed], ticket.type if ticket else None,
            locale)}
        if ticket is None or order is None:
            return out
        event = load_event(session, row.event_id)
        if row.event == "changed" and event is not None:
            out["change_line"] = change_line(
                event.kind, event.actor_role, event.old, event.new, event.note, locale,
                lambda amount: i18n.format_money(amount, order.currency, locale))
        if row.event == "inactivity_warning" and state is not None:
            out["auto_close_at"] = mail_state.auto_close_at(self.policy, state.ticket,
                                                            order.zone)
        if row.event == "processed" and order.kind == "physical" and state is not None:
            goods = state.order_changes
            out["return_line"] = return_line(locale, str(party), shipped=goods["shipped"],
                                             return_info=goods["return_info"],
                                             vendor_address=order.vendor_address)
        return out

    def _allowed(self, session: Session, party: Role, order: MailOrder | None,
                 state: MailState | None) -> frozenset[Action]:
        """The actions `party` could take when the change happened (none without a state:
        a row written before states were kept, or mail about no ticket)."""
        if state is None or order is None or party not in (Role.CUSTOMER, Role.VENDOR,
                                                           Role.STAFF):
            return frozenset()
        bill = latest_bill(session, order.id) if order.recurring else None
        static = OrderFacts(purchased_at=order.purchased_at, amount=order.amount, kind=order.kind,
                            recurring=order.recurring, quantity=order.quantity,
                            latest_bill_at=bill[0] if bill else None,
                            latest_bill_amount=bill[1] if bill else None)
        return allowed_actions(self.policy, party, state.ticket,
                               mail_state.order_facts_at(static, state), state.vendor, state.at)

    def _from_name(self, locale: str, party: Role, order: MailOrder | None) -> str:
        """A customer reads mail from the vendor's support (by the vendor's name); the vendor
        and staff from the marketplace's."""
        vendor = order.vendor if order is not None and party is Role.CUSTOMER else None
        return from_name(locale, vendor or self.settings.marketplace_name)

    def _attachments(self, session: Session, newest: MailComment | None
                     ) -> list[tuple[int, str, str, bytes]]:
        """The newest message's files that go with the mail (`pick_attachments`)."""
        if newest is None or not newest.attachments:
            return []
        return pick_attachments(newest.attachments, attachment_data(session, newest.id),
                                self.settings.max_attachment_bytes)

    def _links(self, row: OutboxFields, ticket: MailTicket | None, order: MailOrder | None,
               party: Role, payload: Mapping[str, Any], now: datetime,
               allowed: frozenset[Action] = frozenset()) -> dict[str, str | None]:
        expires = link_expiry(now, self.settings.link_ttl_days)
        links: dict[str, str | None] = {}
        if ticket is not None:
            if party in (Role.CUSTOMER, Role.VENDOR, Role.STAFF):
                links["ticket"] = self.links.ticket_page(ticket.number, party, expires)
            if party is Role.CUSTOMER and payload.get("disputable"):
                links["dispute"] = self.links.action("dispute", ticket.number, party, expires)
            if party is Role.CUSTOMER and ticket.type == "tech_support" and (
                    Action.REFUND in allowed
                    or (mail_state.STATE not in payload and row.event == "inactivity_warning"
                        and ticket.status == "open")):
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


def _state(payload: Mapping[str, Any], ticket: MailTicket | None, order: MailOrder | None
           ) -> MailState | None:
    """The ticket's state written with the row, read back (None for a row without one)."""
    state = payload.get(mail_state.STATE)
    if not state or ticket is None or order is None:
        return None
    return mail_state.read(state, ticket.created_at, order.zone)


def threading_of(earlier: Sequence[EarlierMail], row: OutboxFields,
                 newest: MailComment | None) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) of a ticket mail.

    Mail of a ticket to one recipient is one thread: each names the previous one and the
    first. The first mail to the sender of a mail that changed the ticket (a new ticket by
    mail, a reply from a client that did not keep our headers) answers that mail, so it lands
    in the sender's own thread (RFC 5322 section 3.6.4).
    """
    first, previous = thread_of(earlier, row.id)
    chain = list(dict.fromkeys(m for m in (first, previous) if m))
    theirs = _answered(earlier, row, newest)
    if theirs is not None:
        return theirs, chain
    return previous, [m for m in (first,) if m]


def _answered(earlier: Sequence[EarlierMail], row: OutboxFields, newest: MailComment | None
              ) -> str | None:
    """The Message-ID of the mail this row first answers to its own sender, if it does."""
    if (newest is None or not newest.message_id or newest.id != row.upto_message_id
            or (newest.author_email or "").lower() != row.recipient.lower()):
        return None
    if any(m.upto_message_id == newest.id for m in earlier if m.id < row.id):
        return None  # an earlier mail to this sender already answered it
    found = newest.message_id.strip().strip("<>")
    return f"<{found}>" if found else None


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
