"""A valid reply-address token names ticket and party, and authorises that party (SPEC 11.1)."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict, reject

name = "reply-token"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if ctx.recipient_kind != "reply":
        return CONTINUE
    if ctx.token_ticket is None or ctx.token_party is None:
        return reject("550 5.1.1", "rejected_bad_token",
                      "this reply address is not valid; reply to a newer mail about the ticket")
    # A bearer secret, like the web link: whatever the From: says, the token's party writes.
    return Verdict(Kind.THREAD, "threaded", f"threaded to #{ctx.token_ticket.number} by reply "
                   "address", ticket_number=ctx.token_ticket.number, role=ctx.token_party,
                   may_act=True, via="token")
