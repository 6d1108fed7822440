"""Our own mail coming back, or a mail looping between servers, is never ingested."""

from __future__ import annotations

from inbound.parse import ParsedMail, header
from inbound.rules.base import CONTINUE, MailContext, Verdict, ignore

name = "own-mail"

# outbound/message.py sets this header on every mail we send; inbound may not import outbound,
# so the name is repeated here (a test checks the two agree).
LOOP_HEADER = "X-Ticketgw-Loop"
# RFC 5321 section 6.3: a mail with very many Received lines is looping.
MAX_RECEIVED = 100


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if header(mail, LOOP_HEADER) is not None:
        return ignore("ignored_own_mail", f"our own mail ({LOOP_HEADER} present)")
    if mail.received_count >= MAX_RECEIVED:
        return ignore("ignored_loop", f"mail loop: {mail.received_count} Received headers")
    return CONTINUE
