"""Which attachments a browser may show itself, and `cid:` images in a mail's HTML (pure).

An HTML mail shows its own images by naming a part of the same mail: `<img src="cid:X">`,
where X is that part's Content-ID (RFC 2392). Intake keeps such a URL on `img src` only, and
the ticket page turns it into a signed link to the attachment; anywhere else a `cid:` URL is
dropped (`cid_filter`, an `attribute_filter` for nh3).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, unquote

CID_SCHEME = "cid"
# Images a browser decodes as pictures and never runs: only these are served inline, and
# only these stand in for a `cid:` image. SVG can carry script; everything else is a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MAX_ID = 998  # the column's length; a Content-ID is one header line at most (RFC 5322)


def shown_inline(content_type: str) -> bool:
    return content_type.strip().lower() in INLINE_TYPES


def content_id(header: str | None) -> str | None:
    """A part's Content-ID without its angle brackets and blanks (None when it has none)."""
    if not header:
        return None
    value = "".join(str(header).split()).strip("<>")
    return value[:_MAX_ID] or None


def cid_of(url: str) -> str | None:
    """The Content-ID a `cid:` URL names (percent-decoded, RFC 2392 section 2), else None."""
    scheme, colon, rest = url.strip().partition(":")
    if not colon or scheme.lower() != CID_SCHEME:
        return None
    return content_id(unquote(rest))


def cid_url(cid: str) -> str:
    """The `cid:` URL of a Content-ID (what `cid_of` reads back)."""
    return f"{CID_SCHEME}:{quote(cid, safe='@!$&()*+,;=:._~-')}"


def cid_filter(resolve: Callable[[str], str | None], *, other_pictures: bool = True
               ) -> Callable[[str, str, str], str | None]:
    """An nh3 `attribute_filter`: the `src` of an `<img>` naming a Content-ID becomes
    `resolve(content_id)` (None drops it); a `cid:` URL in any other attribute is dropped.
    `other_pictures=False` drops every other `img src` too (a page shows the mail's own
    pictures only: no tracking pixel, no request to our own pages). Every other attribute
    value is kept as nh3 let it through."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        picture = (tag, attribute) == ("img", "src")
        cid = cid_of(value)
        if cid is None:
            return value if other_pictures or not picture else None
        return resolve(cid) if picture else None

    return keep
