"""A null envelope sender or MAILER-DAEMON is a delivery notice (RFC 5321 section 4.5.5)."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import CONTINUE, MailContext, Verdict, ignore

name = "null-sender"

_DAEMONS = ("mailer-daemon", "postmaster")


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    envelope = ctx.envelope_from
    if envelope is not None and envelope.strip().strip("<>") == "":
        return ignore("ignored_null_sender", "null envelope sender (a delivery notice)")
    for address in (envelope or "", ctx.sender):
        local = address.strip("<>").split("@", 1)[0].lower()
        if local in _DAEMONS:
            return ignore("ignored_null_sender", f"sent by {local.upper()}")
    return CONTINUE
