"""The same mail twice (Message-ID and sender, or the same bytes) changes nothing again."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict

name = "duplicate"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if ctx.duplicate_of is None:
        return CONTINUE
    return Verdict(Kind.DUPLICATE, "duplicate",
                   f"already processed as inbound mail {ctx.duplicate_of}")
