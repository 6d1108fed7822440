"""A delivery status report (RFC 3464) marks the failed recipients bouncing; nothing else."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict

name = "delivery-report"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if not mail.is_delivery_report:
        return CONTINUE
    hard = " (permanent failure: suppressed)" if ctx.hard_bounce else ""
    who = ", ".join(mail.bounced_recipients) or "no recipient named"
    return Verdict(Kind.BOUNCE, "ignored_bounce", f"delivery report for {who}{hard}",
                   bounced=tuple(mail.bounced_recipients))
