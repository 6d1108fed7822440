"""Mail a program sent (RFC 3834 Auto-Submitted, and the vendors' own markers) is ignored."""

from __future__ import annotations

from inbound.parse import ParsedMail, header
from inbound.rules.base import CONTINUE, MailContext, Verdict, ignore

name = "auto-submitted"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    # RFC 3834 section 5: any value other than "no" means a program sent it.
    value = (header(mail, "Auto-Submitted") or "").split(";", 1)[0].strip().lower()
    if value and value != "no":
        return ignore("ignored_auto_reply", f"automated mail (Auto-Submitted: {value})")
    if header(mail, "X-Autoreply") is not None or header(mail, "X-Autorespond") is not None:
        return ignore("ignored_auto_reply", "automated mail (X-Autoreply)")
    # Exchange puts this on its own automatic replies (MS-OXCMAIL 2.2.3.2.14).
    if header(mail, "X-Auto-Response-Suppress") is not None:
        return ignore("ignored_auto_reply", "automated mail (X-Auto-Response-Suppress)")
    return CONTINUE
