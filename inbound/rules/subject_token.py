"""`[Ticket #N]` in the subject threads a mail only when its sender is a party (SPEC 8)."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict, reject

name = "subject-token"

_NOT_PARTY = ("the sender is not a party of the ticket named in the subject; reply from the "
              "address that received the ticket mail")


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if ctx.subject_number is None or ctx.recipient_kind != "support":
        return CONTINUE
    ticket = ctx.subject_ticket
    # An unknown number and a stranger get the same answer: the reply tells nothing about
    # which tickets exist.
    role = ticket.role_of(ctx.sender, ctx.staff_email) if ticket is not None else None
    if ticket is None or role is None:
        return reject("550 5.7.1", "rejected_not_party", _NOT_PARTY)
    return Verdict(Kind.THREAD, "threaded", f"threaded to #{ticket.number} by subject",
                   ticket_number=ticket.number, role=role, may_act=ctx.verified, via="subject")
