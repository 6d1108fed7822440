"""Carry out a verdict on the tickets: pick the one service call for the mail's outcome."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from gateway.domain.errors import Reject, UserError
from gateway.domain.facts import Action, Role, TicketType
from gateway.domain.texts import N_, _
from gateway.services import by_mail, inbox
from gateway.services.by_mail import Landed, Refused
from gateway.services.context import Actor, MailOrigin, ServiceContext, StoredAttachment
from gateway.services.runtime import Runtime
from gateway.services.ticket_rows import TicketRow
from inbound.commands import describe_unknown, parse_commands
from inbound.forwards import Forward
from inbound.mime import ParsedAttachment
from inbound.parse import ParsedMail
from inbound.replies import extract_reply
from inbound.rules.base import Kind, MailContext, Verdict

# The notice to a sender whose commands came by subject token only (a catalogue msgid: the
# notice says it in the sender's language).
REFUSED_BY_SUBJECT = N_(
    "Your message was added to the ticket, but its commands were not carried out: commands by "
    "mail need the reply address of a ticket mail. Reply to the latest mail about ticket "
    "#%(n)s (or use the link in it) to act on the ticket."
)
# The notice to a vendor or staff member whose forward carried commands of their own
FORWARD_COMMANDS_REFUSED = N_(
    "Your forward was added to ticket #%(n)s as the customer's message, but the commands in it "
    "were not carried out: a forwarded mail never acts on a ticket. Reply to the latest mail "
    "about ticket #%(n)s (or use the link in it) to act on the ticket."
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


def apply(session: Session, runtime: Runtime, mail: ParsedMail, ctx: MailContext,
          verdict: Verdict, inbound_id: int) -> Result:
    """Raise Reject when a service refuses what the mail asks (the caller rolls back)."""
    if verdict.kind is Kind.IGNORE:
        return Result(inbox.IGNORED, verdict.decision, verdict.reason,
                      f"250 2.0.0 recorded and ignored: {verdict.decision}")
    if verdict.kind is Kind.BOUNCE:
        inbox.mark_bouncing(session, verdict.bounced, runtime.clock.now(),
                            hard=verdict.suppressed)
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
    if verdict.forwarded_by is not None and ctx.forward is not None:
        return _forwarded(session, sctx, mail, ctx.forward, verdict, inbound_id)
    if verdict.kind is Kind.THREAD:
        return _thread(session, sctx, mail, ctx, verdict, inbound_id)
    return _open(session, sctx, mail, ctx, verdict, inbound_id)


def _actor(ctx: MailContext, verdict: Verdict) -> Actor:
    assert verdict.role is not None
    return Actor(verdict.role, email=ctx.sender or None, source="email",
                 verified=verdict.may_act)


def _thread(session: Session, sctx: ServiceContext, mail: ParsedMail, ctx: MailContext,
            verdict: Verdict, inbound_id: int) -> Result:
    number = verdict.ticket_number
    assert number is not None
    parsed = parse_commands(new_text(mail))
    text = parsed.text or ("(attachments only)" if mail.attachments else "")
    actor = _actor(ctx, verdict)
    if parsed.unknown:
        by_mail.send_notice(session, sctx, number, actor, "command_refused",
                            describe_unknown(parsed.unknown))
        return Result(inbox.IGNORED, "commands_unknown", "unknown commands; nothing changed",
                      "250 2.0.0 received; unknown commands, nothing changed (a notice was sent)")
    if parsed.template is not None:  # `#template NAME`: the vendor's saved reply
        expanded = by_mail.template_text(session, sctx, number, actor, parsed.template,
                                         parsed.text)
        if isinstance(expanded, Refused):
            return _refused(number, verdict, expanded)
        text = expanded
    origin = mail_origin(mail, inbound_id)
    if parsed.commands and not verdict.may_act:
        # SPEC 11.1: the comment is added, the commands refused, one notice
        commented = by_mail.comment_only(session, sctx, number, _row(ctx, number), actor, text,
                                         origin, _(REFUSED_BY_SUBJECT, n=number))
        if isinstance(commented, Refused):
            return _refused(number, verdict, commented)
        shown = commented.number if commented is not None else number
        return Result(inbox.APPLIED if commented else inbox.IGNORED, "commands_refused",
                      f"{verdict.reason}; commands refused: sender not verified",
                      f"250 2.0.0 added to #{shown}; commands refused (a notice was sent)",
                      commented)
    if parsed.commands:
        landed = by_mail.act(session, sctx, number, actor,
                             [(c.action, c.value) for c in parsed.commands], text, origin)
    else:
        landed = by_mail.reply(session, sctx, number, _row(ctx, number), actor, text, origin)
    if isinstance(landed, Refused):
        return _refused(number, verdict, landed)
    done = ", ".join(f"#{c.action.value}" for c in parsed.commands)
    reason = verdict.reason + (f"; applied {done}" if done else "")
    if landed.number != number:
        reason += f"; landed on #{landed.number}"
    return Result(inbox.APPLIED, verdict.decision, reason,
                  f"250 2.0.0 threaded to #{landed.number}", landed)


def _forwarded(session: Session, sctx: ServiceContext, mail: ParsedMail, forward: Forward,
               verdict: Verdict, inbound_id: int) -> Result:
    """A customer's mail a vendor or staff member forwarded: written as the customer's
    message, marked with who forwarded it; its `#` lines are text, never commands."""
    actor = Actor(Role.CUSTOMER, email=forward.original_from or None, source="email",
                  verified=False)
    text = extract_reply(forward.text).strip() or forward.original_subject.strip() or (
        "(attachments only)" if mail.attachments else "(no text)")
    origin = replace(mail_origin(mail, inbound_id, more=forward.attachments),
                     subject=forward.original_subject or mail.subject)
    if verdict.kind is Kind.THREAD:
        assert verdict.ticket_number is not None
        landed = by_mail.reply(session, sctx, verdict.ticket_number, None, actor, text, origin,
                               sender=_forwarder(verdict))
        if isinstance(landed, Refused):
            return _refused(verdict.ticket_number, verdict, landed)
    else:
        assert verdict.receipt is not None
        try:
            landed = by_mail.open_ticket(session, sctx, verdict.receipt,
                                         TicketType.TECH_SUPPORT, actor, text, origin,
                                         awaiting=False)
        except UserError as exc:
            raise Reject(exc.message, smtp_code="550 5.7.0", code=exc.code) from None
    inbox.mark_forwarded(session, inbound_id, verdict.forwarded_by or "")
    refused = _refuse_forwarders_commands(session, sctx, forward, verdict, landed.number)
    return Result(inbox.APPLIED, verdict.decision, f"{verdict.reason}; on #{landed.number}"
                  + ("; the forwarder's commands refused" if refused else ""),
                  f"250 2.0.0 filed under the customer on #{landed.number}"
                  + ("; commands refused (a notice was sent)" if refused else ""), landed)


def _refuse_forwarders_commands(session: Session, sctx: ServiceContext, forward: Forward,
                                verdict: Verdict, number: int) -> bool:
    """Tell the forwarder, once, that `#` lines on top of its own note did nothing (SPEC 8:
    forbidden commands are answered with a notice); True when there were any."""
    found = parse_commands(forward.note)
    forwarder = _forwarder(verdict)
    if not (found.commands or found.unknown or found.template) or forwarder is None:
        return False
    by_mail.send_notice(session, sctx, number, forwarder, "command_refused",
                        _(FORWARD_COMMANDS_REFUSED, n=number))
    return True


def _forwarder(verdict: Verdict) -> Actor | None:
    """The vendor or staff member who forwarded the mail, as the party told of refusals."""
    if verdict.forwarder is None:
        return None
    return Actor(verdict.forwarder, email=verdict.forwarded_by, source="email")


def _row(ctx: MailContext, number: int) -> TicketRow | None:
    """The row intake read of the ticket the verdict names."""
    for ref in (ctx.token_ticket, ctx.reference_ticket, ctx.subject_ticket):
        if ref is not None and ref.number == number:
            return ref.row
    return None


def _refused(number: int, verdict: Verdict, refused: Refused) -> Result:
    return Result(inbox.IGNORED, "refused", f"{verdict.reason}; refused: {refused.message}",
                  f"250 2.0.0 received; not applied to #{number} (a notice was sent)")


def _open(session: Session, sctx: ServiceContext, mail: ParsedMail, ctx: MailContext,
          verdict: Verdict, inbound_id: int) -> Result:
    assert verdict.receipt is not None and verdict.ticket_type is not None
    ticket_type = TicketType(verdict.ticket_type)
    awaiting = ticket_type is not TicketType.TECH_SUPPORT and not verdict.may_act
    if awaiting and ticket_type is TicketType.REFUND and _has_open_tech_support(ctx, verdict):
        raise Reject(NO_CONVERSION, smtp_code="550 5.7.0")
    body = new_text(mail).strip() or mail.subject.strip() or "(no text)"
    reason, body = _leading_reason(body, mail) if ticket_type is TicketType.REFUND else (
        None, body)
    try:
        ticket = by_mail.open_ticket(session, sctx, verdict.receipt, ticket_type,
                                     _actor(ctx, verdict), body, mail_origin(mail, inbound_id),
                                     awaiting=awaiting, reason=reason)
    except UserError as exc:
        raise Reject(exc.message, smtp_code="550 5.7.0", code=exc.code) from None
    if awaiting:
        return Result(inbox.APPLIED, "opened_unconfirmed",
                      f"{verdict.reason}; waiting for the sender to confirm",
                      f"250 2.0.0 received as #{ticket.number}; confirm it with the link we "
                      "mailed to the sender", ticket)
    return Result(inbox.APPLIED, verdict.decision, f"{verdict.reason}; opened #{ticket.number}",
                  f"250 2.0.0 opened #{ticket.number}", ticket)


def _leading_reason(body: str, mail: ParsedMail) -> tuple[str | None, str]:
    """A refund request's reason: the word after a `#refund` line on top (SPEC 7: the
    addons profile needs one); the text without that line."""
    parsed = parse_commands(body)
    first = parsed.commands[0] if parsed.commands else None
    if first is None or first.action is not Action.REFUND or not first.value:
        return None, body
    return first.value, parsed.text or mail.subject.strip() or "(no text)"


def _has_open_tech_support(ctx: MailContext, verdict: Verdict) -> bool:
    return any(o.receipt == verdict.receipt and o.open_tech_support is not None
               for o in ctx.named_orders + ctx.sender_orders)


def new_text(mail: ParsedMail) -> str:
    return mail.new_text if mail.new_text is not None else extract_reply(mail.text)


def mail_origin(mail: ParsedMail, inbound_id: int, *,
                more: Iterable[ParsedAttachment] = ()) -> MailOrigin:
    """Where the message the mail makes comes from: its Message-ID, its whole text, its
    inbound row and its attachments (oversized ones listed by name and size, without their
    data), each under a generated name; `more` are attachments found inside it (those of
    a forwarded message/rfc822 part)."""
    attachments = tuple(
        StoredAttachment(part.filename[:255] or "attachment", part.content_type[:255],
                         part.size, part.data, secrets.token_hex(16), part.content_id)
        for part in (*mail.attachments, *more))
    return MailOrigin(mail.message_id, mail.text, inbound_id, attachments, mail.subject,
                      mail.html)
