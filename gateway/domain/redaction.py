"""What an operator may read of a secret: tokens in addresses and links, and API keys, cut short.

Reply addresses (`reply+TOKEN@`), return paths (`bounce+TOKEN@`), signed links (`/t/TOKEN`,
`/r/TOKEN`, `/a/ACTION/TOKEN`, `/f/TOKEN/NAME`) and API keys (`tgw_…`) are bearer secrets:
whoever reads one can act as its party (SPEC 11.1). Logs, the spool's metadata and the
operator's commands show the first four characters of each, enough to tell two apart and
never enough to use one (after Zulip's `redact_email_address`). Pure: text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar, cast

SHOWN = 4
MARK = "…"
# gateway.services.apikeys.KEY_PREFIX (the domain imports nothing above it; a test keeps
# the two equal)
API_KEY_PREFIX = "tgw_"

# the token runs up to the `@`, or to wherever the text was cut (a truncated repr); `%2B` is
# the `+` of an address inside a URL
_ADDRESS = re.compile(r"(?<![A-Za-z0-9])((?:reply|bounce)(?:\+|%2B))([A-Za-z0-9_=\-]+)",
                      re.IGNORECASE | re.ASCII)
_LINK = re.compile(r"(/(?:t|r|f|a/[a-z][a-z_\-]*)/)([A-Za-z0-9_\-]{16,})")
_API_KEY = re.compile(rf"(?<![A-Za-z0-9])({API_KEY_PREFIX})([A-Za-z0-9_\-]{{8,}})")

T = TypeVar("T")


def redact_token(token: str) -> str:
    """`abcdefgh…` → `abcd…`; what is already that short stays (so redacting twice is once)."""
    return token if len(token) <= SHOWN else token[:SHOWN] + MARK


def _cut(match: re.Match[str]) -> str:
    return match.group(1) + redact_token(match.group(2))


def redact_text(text: str) -> str:
    """`text` with every token and API key in it cut to its first four characters.

    A pattern runs only when the words it needs are in the text: a scan for them costs
    microseconds, a pattern that cannot start from a fixed word costs a hundred times more
    (measured on a 3 KB traceback); most log lines carry none."""
    folded = text.lower()
    if "reply" in folded or "bounce" in folded:
        text = _ADDRESS.sub(_cut, text)
    if "/" in text:
        text = _LINK.sub(_cut, text)
    if API_KEY_PREFIX in text:
        text = _API_KEY.sub(_cut, text)
    return text


def redact(value: T) -> T:
    """Strings redacted inside any nesting of mappings, lists and tuples; the rest as it is
    (for JSON-shaped output: a mapping comes back as a dict, a tuple as a list)."""
    if isinstance(value, str):
        return cast(T, redact_text(value))
    if isinstance(value, Mapping):
        return cast(T, {key: redact(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return cast(T, [redact(item) for item in value])
    return value
