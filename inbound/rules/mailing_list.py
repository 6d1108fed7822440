"""Bulk and list mail is ignored, except list mail carrying a valid reply token (SPEC 11.11)."""

from __future__ import annotations

from inbound.parse import ParsedMail, header
from inbound.rules.base import CONTINUE, MailContext, Verdict, ignore

name = "mailing-list"


def check(mail: ParsedMail, ctx: MailContext) -> Verdict:
    precedence = (header(mail, "Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk"):
        return ignore("ignored_bulk", f"bulk mail (Precedence: {precedence})")
    is_list = precedence == "list" or header(mail, "List-Id") is not None
    if is_list and ctx.token_ticket is None:
        # a vendor's support address may be a group: its mail through a valid reply
        # address is a person's answer, relayed by a list server
        return ignore("ignored_list", "mailing-list mail without a reply address")
    return CONTINUE
