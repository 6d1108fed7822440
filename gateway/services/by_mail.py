"""Each outcome of an inbound mail, as one service call in the caller's transaction.

The outcomes: a reply, commands, a new ticket, and the notices the mail's sender gets.
`inbound.apply` only picks the call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.domain.errors import Conflict, UserError
from gateway.domain.facts import Action, TicketType
from gateway.domain.texts import Text
from gateway.services import inbox, journal, reply_texts, ticket_rows, tickets
from gateway.services.context import NO_ORIGIN, Actor, MailOrigin, ServiceContext
from gateway.services.ticket_rows import TicketRow
from store.models import InboundMail, OutboxMail, Ticket

REQUEST_NOT_PROCESSED = "request_not_processed"
RIGHT_REVOKED = "right_revoked"  # the code of a revoked vendor's refused answer


@dataclass(frozen=True)
class Landed:
    """The ticket a mail landed on."""

    id: int
    number: int

    @classmethod
    def of(cls, ticket: Ticket | TicketRow) -> Landed:
        return cls(ticket.id, ticket.number)


@dataclass(frozen=True)
class Refused:
    """A service refused what the mail asked: nothing of it was written, and its sender was
    sent a notice saying `message` (at most once a day)."""

    message: str


def reply(session: Session, ctx: ServiceContext, number: int, row: TicketRow | None,
          actor: Actor, text: str, origin: MailOrigin, *,
          sender: Actor | None = None) -> Landed | Refused:
    """A reply to ticket `number` (`row`: the ticket as intake read it, if it did). Refused
    before it changes anything: the services check first, so no savepoint is needed. The
    refusal's notice goes to `sender` when the mail came from someone else than `actor` (a
    forward: the customer wrote it, the forwarder sent it)."""
    try:
        return _reply(session, ctx, number, row, actor, text, origin)
    except UserError as exc:
        return _refuse(session, ctx, number, sender or actor, exc)


def act(session: Session, ctx: ServiceContext, number: int, actor: Actor,
        commands: Sequence[tuple[Action, str | None]], text: str,
        origin: MailOrigin) -> Landed | Refused:
    """Commands on ticket `number`, in order: all of them or none. The text and its origin
    ride on the first as its comment."""
    try:
        with session.begin_nested():
            ticket = tickets.find_ticket(session, number)
            comment: str | None = text or None
            for action, value in commands:
                ticket = tickets.act(session, ctx, ticket.number, action, actor,
                                          comment=comment, value=value,
                                          origin=origin if comment else NO_ORIGIN)
                comment = None
    except UserError as exc:
        return _refuse(session, ctx, number, actor, exc)
    return Landed.of(ticket)


def template_text(session: Session, ctx: ServiceContext, number: int, actor: Actor,
                  name: str, own_text: str) -> str | Refused:
    """The reply `#template NAME` makes of ticket `number`'s template and the mail's own
    text; Refused (with a notice) when the sender has no such template or may use none."""
    try:
        ticket = tickets.find_ticket(session, number)
        return reply_texts.with_template(session, ticket.id, actor, name, own_text)
    except UserError as exc:
        return _refuse(session, ctx, number, actor, exc)


def comment_only(session: Session, ctx: ServiceContext, number: int, row: TicketRow | None,
                 actor: Actor, text: str, origin: MailOrigin,
                 notice: str) -> Landed | Refused | None:
    """Commands from a sender who may not act (SPEC 11.1): the text is added as a reply (None
    when there is none), the commands are not carried out, and the sender is told `notice`."""
    landed: Landed | None = None
    if text:
        try:
            with session.begin_nested():
                landed = _reply(session, ctx, number, row, actor, text, origin)
        except UserError as exc:
            return _refuse(session, ctx, number, actor, exc)
    send_notice(session, ctx, number, actor, "command_refused", notice)
    return landed


def open_ticket(session: Session, ctx: ServiceContext, receipt: str, ticket_type: TicketType,
                actor: Actor, text: str, origin: MailOrigin, *, awaiting: bool,
                reason: str | None = None) -> Landed:
    """A ticket opened by mail. A refusal raises UserError and leaves nothing (a savepoint).
    `awaiting` confirmation: the sender is sent the signed link to confirm it."""
    with session.begin_nested():
        ticket = Landed.of(tickets.open_ticket(
            session, ctx, receipt, ticket_type, actor, reason=reason, comment=text,
            awaiting_confirmation=awaiting, origin=origin))
    if awaiting:
        send_notice(session, ctx, ticket.number, actor, f"confirm_request:{ticket.number}", "",
                    notice_kind="confirm_request")
    return ticket


def send_notice(session: Session, ctx: ServiceContext, number: int, actor: Actor, key: str,
                text: str, *, notice_kind: str | None = None) -> None:
    """A notice about ticket `number` to the mail's sender only, at most once a day per
    address and `key`."""
    address = actor.email
    if not address or not inbox.take_notice(session, address, key, ctx.recorded_at):
        return
    ticket = tickets.find_ticket(session, number)
    # a Text is kept as its msgid and values, so the mail says it in the reader's language
    refused = text.to_json() if isinstance(text, Text) else text
    journal.notify(session, ctx, ticket, "notice", (actor.role,), notice_kind=notice_kind or key,
                   payload={"refused": refused}, recipient=address)


def explain_refusal(session: Session, ctx: ServiceContext, inbound_id: int, reason: str, *,
                    own_domain: str) -> None:
    """A `Request Not Processed` mail to the sender of a refused mail, at most once a day per
    address. It names no ticket, so a stranger learns nothing of one; an empty sender or one
    of ours (a loop) gets none."""
    mail = session.get(InboundMail, inbound_id)
    sender = (mail.sender if mail is not None else "").strip().lower()
    local, at, domain = sender.rpartition("@")
    if not (local and at) or domain == own_domain.lower():
        return
    now = ctx.recorded_at
    if not inbox.take_notice(session, sender, REQUEST_NOT_PROCESSED, now):
        return
    session.add(OutboxMail(
        ticket_id=None, order_id=None, event="notice", notice_kind=REQUEST_NOT_PROCESSED,
        party="customer", recipient=sender, locale="en",
        payload={"refused": reason, "inbound_id": inbound_id},
        state="pending", attempts=0, message_id=journal.new_message_id(ctx.mail_domain),
        created_at=now, next_attempt_at=now))


def _reply(session: Session, ctx: ServiceContext, number: int, row: TicketRow | None,
           actor: Actor, text: str, origin: MailOrigin) -> Landed:
    """From the row intake read when `ticket_rows` can take it, else through the Ticket."""
    if row is not None and ticket_rows.can_reply(row):
        ticket_rows.reply(session, ctx, row, actor, text, origin)
        return Landed.of(row)
    return Landed.of(tickets.act(session, ctx, number, Action.REPLY, actor, comment=text,
                                      origin=origin))


def _refuse(session: Session, ctx: ServiceContext, number: int, actor: Actor,
            exc: UserError) -> Refused:
    if exc.code == RIGHT_REVOKED and actor.email:
        # told every time, not once a day: each dropped answer is a customer left waiting
        # (the notification cap still holds a flood back into one digest)
        journal.notify(session, ctx, tickets.find_ticket(session, number), "notice",
                       (actor.role,), notice_kind="reply_revoked", recipient=actor.email)
        return Refused(exc.message)
    closed = isinstance(exc, Conflict) and exc.code == "ticket_closed"
    send_notice(session, ctx, number, actor, "vendor_reply_closed" if closed else
                "command_refused", exc.message)
    return Refused(exc.message)
