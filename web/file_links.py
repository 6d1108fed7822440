"""The signed links a ticket page gives its messages' files (served by `web.files`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from gateway.domain.inline_images import shown_inline
from gateway.domain.links import link_expiry
from gateway.domain.tokens import Claim
from gateway.services import attachments
from gateway.services.runtime import Runtime
from store.models import Message

PURPOSE = "attachment"


def file_url(runtime: Runtime, attachment_id: int, filename: str, claim: Claim,
             now: datetime) -> str:
    """The signed link of one attachment for the page's party, expiring with the page's link
    (a workplace page has none: then as a mailed link would)."""
    expires = claim.expires_at or link_expiry(now, runtime.settings.link_ttl_days)
    token = runtime.tokens.sign(PURPOSE, attachment_id, claim.party, expires)
    shown = "".join(ch for ch in filename if ch.isprintable()) or "file"  # routes match no CR/LF
    return f"/f/{token}/{quote(shown, safe='')}"


def page_files(runtime: Runtime, session: Session, claim: Claim, now: datetime,
               messages: Sequence[Message]) -> dict[str, Any]:
    """What a ticket page needs for its messages' files: `files`, the link of each kept
    attachment by id; `inline_images`, by message id, the links of the pictures its HTML
    shows, by Content-ID (only raster images: anything else would not show)."""
    missing = attachments.not_kept(session, [m.id for m in messages])
    files: dict[int, str] = {}
    inline: dict[int, dict[str, str]] = {}
    for message in messages:
        for part in message.attachments:
            if part.id in missing:
                continue
            files[part.id] = file_url(runtime, part.id, part.filename, claim, now)
            if part.content_id and shown_inline(part.content_type):
                inline.setdefault(message.id, {})[part.content_id] = files[part.id]
    return {"files": files, "inline_images": inline}
