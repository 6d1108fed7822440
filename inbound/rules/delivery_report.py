"""A delivery status report (RFC 3464) marks bouncing only the recipients of our own mail.

A report counts for an address only when it is tied to a mail we sent to that address: it
came back to that mail's signed return address (`bounce+TOKEN@`), or it returns that mail
by its Message-ID (random, so nobody else knows it). Any other report is recorded and
suppresses nobody: anyone can write one naming anyone (SPEC 8).
"""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, Kind, MailContext, Verdict

name = "delivery-report"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    if not mail.is_delivery_report:
        return CONTINUE
    tied = tied_recipients(mail.bounced_recipients, ctx)
    if not tied:
        who = ", ".join(mail.bounced_recipients) or "no recipient named"
        return Verdict(Kind.BOUNCE, "ignored_untied_bounce",
                       f"delivery report for {who} not tied to a mail of ours to that address "
                       "(neither our return address nor one of our Message-IDs): nobody is "
                       "marked bouncing")
    hard = failed_for_good(mail, tied, ctx)
    who = ", ".join(
        f"{address} {how}" + (" (permanent failure: suppressed)" if address in hard else "")
        for address, how in tied.items())
    return Verdict(Kind.BOUNCE, "ignored_bounce", f"delivery report for {who}",
                   bounced=tuple(tied), suppressed=tuple(hard))


def failed_for_good(mail: ParsedMail, tied: dict[str, str], ctx: MailContext) -> list[str]:
    """The tied addresses whose delivery failed for good, by their own Status. The return
    address names its recipient whatever the report calls it (an alias the remote side
    expanded, say): that one failed for good when every recipient the report names did."""
    permanent = {a.strip().lower() for a in mail.failed_for_good}
    named = {a.strip().lower() for a in mail.bounced_recipients}
    hard = [address for address in tied if address in permanent]
    if ctx.return_path is not None:
        own = ctx.return_path.recipient.strip().lower()
        if own not in named and named and named <= permanent and own not in hard:
            hard.append(own)
    return hard


def tied_recipients(named: list[str], ctx: MailContext) -> dict[str, str]:
    """The addresses the report may mark, each with how it is tied to our mail. The return
    address names the mail and so its recipient, whatever the report says; a Message-ID ties
    only a recipient the report names who was sent that mail."""
    tied: dict[str, str] = {}
    if ctx.return_path is not None:
        tied[ctx.return_path.recipient.strip().lower()] = "(by return address)"
    quoted = {m.recipient.strip().lower() for m in ctx.quoted_mail}
    for address in named:
        if address.strip().lower() in quoted:
            tied.setdefault(address.strip().lower(), "(by Message-ID)")
    return tied
