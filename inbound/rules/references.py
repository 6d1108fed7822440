"""In-Reply-To/References naming one of our mails threads a party's mail to its ticket."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict, reject

name = "references"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    ticket = ctx.reference_ticket
    if ticket is None or ctx.recipient_kind != "support":
        return CONTINUE
    role = ticket.role_of(ctx.sender, ctx.staff_email)
    if role is None:
        return reject("550 5.7.1", "rejected_not_party",
                      "the sender is not a party of the ticket this mail answers; reply from "
                      "the address that received the ticket mail")
    return Verdict(Kind.THREAD, "threaded", f"threaded to #{ticket.number} by References",
                   ticket_number=ticket.number, role=role, may_act=ctx.verified,
                   via="references")
