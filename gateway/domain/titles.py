"""A ticket's title: the customer's own subject, without what mail clients add to it (pure)."""

from __future__ import annotations

import re
from typing import Final

MAX_TITLE: Final = 300
# reply and forward prefixes of the four languages' mail clients (RFC 5322 section 3.6.5
# names only "Re:"; the others are common practice): Re, Fwd, Fw, Tr (fr), AW/WG (de),
# RES/ENC (pt), any number of them, with or without a count ("Re[2]:").
_PREFIX: Final = re.compile(r"^\s*(?:(?:re|fwd?|tr|aw|wg|res|enc)(?:\[\d+\])?\s*:\s*)+",
                            re.IGNORECASE)
_OUR_TOKEN: Final = re.compile(r"\[Ticket #\d+\]", re.IGNORECASE)
_SPACES: Final = re.compile(r"\s+")


def ticket_title(subject: str | None) -> str | None:
    """The title a ticket keeps from the subject of the mail that opened it; None when it
    has none of the sender's own words (empty, or one of our fixed subjects answered)."""
    if not subject:
        return None
    text = _SPACES.sub(" ", "".join(ch if ch.isprintable() else " " for ch in subject)).strip()
    if _OUR_TOKEN.search(text):
        return None  # a reply to our mail: its subject is ours, not the customer's
    text = _PREFIX.sub("", text).strip()
    return text[:MAX_TITLE] or None
