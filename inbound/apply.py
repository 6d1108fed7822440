"""Carry out a verdict on the tickets, through the services, in the caller's transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.domain.errors import Conflict, Reject, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.services import inbox, journal, ticket_rows, tickets
from gateway.services.context import Actor, ServiceContext
from gateway.services.runtime import Runtime
from gateway.services.ticket_rows import TicketRow
from inbound.commands import Commands, describe_unknown, parse_commands
from inbound.parse import ParsedMail
from inbound.replies import extract_reply
from inbound.rules.base import Kind, MailContext, Verdict
from store.models import Ticket

REFUSED_BY_SUBJECT = (
    "Your message was added to the ticket, but its commands were not carried out: commands by "
    "mail need the reply address of a ticket mail. Reply to the latest mail about ticket #{n} "
    "(or use the link in it) to act on the ticket."
)
NO_CONVERSION = ("this order has an open tech-support ticket; to turn it into a refund, reply to "
                 "the latest mail about that ticket with #refund, or use the link in it")


@dataclass(frozen=True)
class Result:
    state: str  # applied | ignored | rejected | duplicate
    decision: str
    reason: str
    reply: str  # the SMTP answer
    ticket: Landed | None = None
    keep_raw: bool = True  # False: the sender keeps the mail and retries; not stored


@dataclass(frozen=True)
class Landed:
    """The ticket a mail landed on."""

    id: int
    number: int

    @classmethod
    def of(cls, ticket: Ticket | TicketRow) -> Landed:
        return cls(ticket.id, ticket.number)


def apply(session: Session, runtime: Runtime, mail: ParsedMail, ctx: MailContext,
          verdict: Verdict, inbound_id: int) -> Result:
    """Raise Reject when a service refuses what the mail asks (the caller rolls back)."""
    if verdict.kind is Kind.IGNORE:
        return Result(inbox.IGNORED, verdict.decision, verdict.reason,
                      f"250 2.0.0 recorded and ignored: {verdict.decision}")
    if verdict.kind is Kind.BOUNCE:
        now = runtime.clock.now()
        for address in verdict.bounced:
            inbox.mark_bouncing(session, address, now, hard=ctx.hard_bounce)
        return Result(inbox.IGNORED, verdict.decision, verdict.reason,
                      "250 2.0.0 delivery report recorded")
    if verdict.kind is Kind.DUPLICATE:
        return Result("duplicate", verdict.decision, verdict.reason,
                      "250 2.0.0 already received; nothing changed")
    if verdict.kind in (Kind.REJECT, Kind.DEFER):
        # deferred: the sender keeps it and retries; a flood is not stored
        return Result(inbox.REJECTED, verdict.decision, verdict.reason,
                      f"{verdict.smtp} {verdict.reason}", keep_raw=verdict.kind is Kind.REJECT)
    sctx = runtime.context()
    if verdict.kind is Kind.THREAD:
        return _thread(session, sctx, runtime, mail, ctx, verdict, inbound_id)
    return _open(session, sctx, runtime, mail, ctx, verdict, inbound_id)


def _actor(ctx: MailContext, verdict: Verdict) -> Actor:
    assert verdict.role is not None
    return Actor(verdict.role, email=ctx.sender or None, source="email",
                 verified=verdict.may_act)


def _thread(session: Session, sctx: ServiceContext, runtime: Runtime, mail: ParsedMail,
            ctx: MailContext, verdict: Verdict, inbound_id: int) -> Result:
    number = verdict.ticket_number
    assert number is not None and verdict.role is not None
    row = _row(ctx, number)
    parsed = parse_commands(new_text(mail))
    text = parsed.text or ("(attachments only)" if mail.attachments else "")
    actor = _actor(ctx, verdict)
    if parsed.unknown:
        _notice(session, sctx, runtime, number, verdict.role, ctx.sender, "command_refused",
                describe_unknown(parsed.unknown))
        return Result(inbox.IGNORED, "commands_unknown", "unknown commands; nothing changed",
                      "250 2.0.0 received; unknown commands, nothing changed (a notice was sent)")
    if parsed.commands and not verdict.may_act:
        # SPEC 11.1: the comment is added, the commands refused, one notice
        ticket = None
        if text:
            try:
                with session.begin_nested():
                    ticket = _run(session, sctx, number, Commands((), (), text), actor, mail,
                                  inbound_id, row)
            except UserError as exc:
                return _refused(session, sctx, runtime, number, verdict, ctx, exc)
        _notice(session, sctx, runtime, number, verdict.role, ctx.sender, "command_refused",
                REFUSED_BY_SUBJECT.format(n=number))
        shown = ticket.number if ticket is not None else number
        return Result(inbox.APPLIED if ticket else inbox.IGNORED, "commands_refused",
                      f"{verdict.reason}; commands refused: sender not verified",
                      f"250 2.0.0 added to #{shown}; commands refused (a notice was sent)",
                      ticket)
    try:
        if parsed.commands:  # several actions: all of them or none
            with session.begin_nested():
                ticket = _run(session, sctx, number, Commands(parsed.commands, (), text), actor,
                              mail, inbound_id, row)
        else:  # a reply is refused before it changes anything (services check first)
            ticket = _run(session, sctx, number, Commands((), (), text), actor, mail, inbound_id,
                          row)
    except UserError as exc:
        return _refused(session, sctx, runtime, number, verdict, ctx, exc)
    done = ", ".join(f"#{c.action.value}" for c in parsed.commands)
    reason = verdict.reason + (f"; applied {done}" if done else "")
    if ticket.number != number:
        reason += f"; landed on #{ticket.number}"
    return Result(inbox.APPLIED, verdict.decision, reason,
                  f"250 2.0.0 threaded to #{ticket.number}", ticket)


def _run(session: Session, sctx: ServiceContext, number: int, parsed: Commands, actor: Actor,
         mail: ParsedMail, inbound_id: int, row: TicketRow | None) -> Landed:
    """The comment, then each command in order; the comment rides on the first action. A
    plain reply to a ticket the row path takes is written from the row intake read."""
    extra = dict(message_id=mail.message_id, original=mail.text, inbound_id=inbound_id,
                 attachments=attachments(mail))
    if not parsed.commands and row is not None and ticket_rows.can_reply(row):
        ticket_rows.reply(session, sctx, row, actor, parsed.text,
                          **extra)  # type: ignore[arg-type]
        return Landed.of(row)
    if not parsed.commands:
        ticket = tickets.act(session, sctx, number, Action.REPLY, actor, comment=parsed.text,
                             **extra)  # type: ignore[arg-type]
    else:
        comment: str | None = parsed.text or None
        ticket = tickets.find_ticket(session, number)
        for command in parsed.commands:
            ticket = tickets.act(session, sctx, ticket.number, command.action, actor,
                                 comment=comment, value=command.value,
                                 **(extra if comment else {}))  # type: ignore[arg-type]
            comment = None
    return Landed.of(ticket)


def _row(ctx: MailContext, number: int) -> TicketRow | None:
    """The row intake read of the ticket the verdict names."""
    for ref in (ctx.token_ticket, ctx.reference_ticket, ctx.subject_ticket):
        if ref is not None and ref.number == number:
            return ref.row
    return None


def _refused(session: Session, sctx: ServiceContext, runtime: Runtime, number: int,
             verdict: Verdict, ctx: MailContext, exc: UserError) -> Result:
    assert verdict.role is not None
    closed = isinstance(exc, Conflict) and exc.code == "ticket_closed"
    kind = "vendor_reply_closed" if closed else "command_refused"
    _notice(session, sctx, runtime, number, verdict.role, ctx.sender, kind, exc.message)
    return Result(inbox.IGNORED, "refused", f"{verdict.reason}; refused: {exc.message}",
                  f"250 2.0.0 received; not applied to #{number} (a notice was sent)")


def _open(session: Session, sctx: ServiceContext, runtime: Runtime, mail: ParsedMail,
          ctx: MailContext, verdict: Verdict, inbound_id: int) -> Result:
    assert verdict.receipt is not None and verdict.ticket_type is not None
    ticket_type = TicketType(verdict.ticket_type)
    awaiting = ticket_type is not TicketType.TECH_SUPPORT and not verdict.may_act
    if awaiting and ticket_type is TicketType.REFUND and _has_open_tech_support(ctx, verdict):
        raise Reject(NO_CONVERSION, smtp_code="550 5.7.0")
    body = new_text(mail).strip() or mail.subject.strip() or "(no text)"
    try:
        with session.begin_nested():
            opened = tickets.open_ticket(
                session, sctx, verdict.receipt, ticket_type, _actor(ctx, verdict), comment=body,
                awaiting_confirmation=awaiting, message_id=mail.message_id, original=mail.text,
                inbound_id=inbound_id, attachments=attachments(mail))
            ticket = Landed.of(opened)
    except UserError as exc:
        raise Reject(exc.message, smtp_code="550 5.7.0", code=exc.code) from None
    if awaiting:
        assert verdict.role is not None
        _notice(session, sctx, runtime, ticket.number, verdict.role, ctx.sender,
                f"confirm_request:{ticket.number}", "", notice_kind="confirm_request")
        return Result(inbox.APPLIED, "opened_unconfirmed",
                      f"{verdict.reason}; waiting for the sender to confirm",
                      f"250 2.0.0 received as #{ticket.number}; confirm it with the link we "
                      "mailed to the sender", ticket)
    return Result(inbox.APPLIED, verdict.decision, f"{verdict.reason}; opened #{ticket.number}",
                  f"250 2.0.0 opened #{ticket.number}", ticket)


def _has_open_tech_support(ctx: MailContext, verdict: Verdict) -> bool:
    return any(o.receipt == verdict.receipt and o.open_tech_support is not None
               for o in ctx.named_orders + ctx.sender_orders)


def _notice(session: Session, sctx: ServiceContext, runtime: Runtime, number: int, role: Role,
            address: str, key: str, text: str, *, notice_kind: str | None = None) -> None:
    """A notice to the sender only, at most once a day per address and kind."""
    if not address or not inbox.take_notice(session, address, key, runtime.clock.now()):
        return
    ticket = tickets.find_ticket(session, number)
    journal.notify(session, sctx, ticket, "notice", (role,), notice_kind=notice_kind or key,
                   payload={"refused": text}, recipient=address)


def new_text(mail: ParsedMail) -> str:
    return mail.new_text if mail.new_text is not None else extract_reply(mail.text)


def attachments(mail: ParsedMail) -> list[tuple[str, str, int, bytes | None, str]]:
    """The mail's attachments as the message it makes keeps them (oversized ones listed by
    name and size, without their data), each under a generated name."""
    return [(part.filename[:255] or "attachment", part.content_type[:255], part.size,
             part.data, secrets.token_hex(16)) for part in mail.attachments]
