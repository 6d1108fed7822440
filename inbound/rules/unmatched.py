"""The last rule: a mail no other rule placed is refused with a reason."""

from __future__ import annotations

from inbound.parse import ParsedMail
from inbound.rules.base import MailContext, Verdict, reject

name = "unmatched"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    return reject("550 5.1.1", "rejected_recipient",
                  "this address does not accept mail; write to the support address")
