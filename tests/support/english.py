"""Finding English left in a French, German or Portuguese mail or page.

A rendering is checked as a person reads it: the HTML's visible text (tags, styles and
attribute values dropped), without addresses and links, which are not words of ours. Any of
a small list of common English words, as a whole word, is English left behind. Names, codes
and brand words that a rendering may carry are allowed; so are the few English-looking words
that are also words of the language itself (German "was", French and German "ticket": the
seeds' own word).
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Final

STOP_WORDS: Final = frozenset({
    "the", "your", "you", "ticket", "tickets", "refund", "refunds", "request", "requests",
    "please", "reply", "replies", "click", "here", "order", "orders", "vendor", "vendors",
    "customer", "customers", "was", "has", "have", "will", "been", "with", "this", "that",
    "and", "not", "for", "from", "link", "open", "opened", "closed", "processed", "change",
    "changed", "cancel", "cancellation", "sale", "receipt", "amount", "quantity", "yes",
    "until", "only", "can", "could", "should", "would", "what", "when", "which", "there",
    "staff", "service", "support", "download", "email", "mail", "page", "sign", "comment",
    "comments", "history", "details", "reason", "problem", "product", "purchased", "by", "of",
    "to", "on", "is", "are", "it", "at", "or", "no", "new", "back", "again", "now",
})
# Words of the language itself, and the seeds' own borrowings, that look like English.
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "fr": frozenset({"ticket", "tickets", "support", "service", "page", "on", "or", "change"}),
    "de": frozenset({"ticket", "tickets", "was", "mail", "link", "problem", "support"}),
    "pt": frozenset({"link", "mail", "no", "download"}),  # the pt seed says "fazer o download"
}
# links, addresses, time zone names (America/New_York), `#commands` (typed as they are in
# every language) and the subject token `[Ticket #N]` that stays literal in every locale
_URL = re.compile(r"https?://\S+|\b[\w.+-]+@[\w.-]+\b|<[^<>@\s]+@[^<>\s]+>|\[Ticket #\d+\]"
                  r"|\b[A-Z][A-Za-z]+/[A-Za-z_+/-]+|#[a-z]+\b")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_DROP = re.compile(r"<(style|script|head)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def visible_text(html: str) -> str:
    """What a reader sees of an HTML document: its text, entities decoded, no tags."""
    title = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
    body = _TAG.sub(" ", _DROP.sub(" ", html))
    return html_lib.unescape((title.group(1) if title else "") + " " + body)


def english_words(text: str, locale: str, *, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The English stop words in `text` (links and addresses left out), as written."""
    words = _WORD.findall(_URL.sub(" ", text))
    ok = ALLOWED.get(locale, frozenset()) | {a.lower() for a in allowed}
    return [w for w in words if w.lower() in STOP_WORDS and w.lower() not in ok]
