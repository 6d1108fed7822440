"""A sender over its rate limit is asked to retry later (a temporary answer)."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict

name = "rate-limit"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if not ctx.rate_limited:
        return CONTINUE
    return Verdict(Kind.DEFER, "deferred_rate_limit",
                   "too many mails from this sender; try again later", smtp="450 4.7.1")
