"""The spool directory: mail the database could not take, kept as files until a replay.

Each mail is two owner-only files (0600, in a 0700 folder): `NAME.eml`, the raw mail byte for
byte (a replay needs it exactly), and `NAME.json`, what an operator reads — the envelope and
the error, with tokens redacted. A reply or return address's token is not written down: the
JSON keeps what it names (ticket or outbox row, party), and a replay signs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.domain.errors import UserError
from gateway.domain.facts import Role
from gateway.domain.redaction import redact_text
from gateway.services.runtime import Runtime
from inbound.pipeline import split_recipient
from store.files import private_dir, write_private

# the kinds of address whose token is its purpose's (gateway.domain.tokens)
_SIGNED_KINDS = ("reply", "bounce")


@dataclass(frozen=True)
class Spooled:
    """One spooled mail as a replay takes it again."""

    eml: Path
    raw: bytes
    envelope_from: str | None
    recipient: str

    def remove(self) -> None:
        self.eml.unlink()
        self.eml.with_suffix(".json").unlink(missing_ok=True)


def spool_dir(runtime: Runtime) -> Path:
    """Beside the outbound Maildir (`var/` by default): mail the database could not take."""
    return Path(runtime.settings.outbox_maildir).parent / "inbound-spool"


def spool_to_disk(runtime: Runtime, raw: bytes, *, envelope_from: str | None, recipient: str,
                  error: str) -> Path:
    folder = private_dir(spool_dir(runtime))
    name = f"{time.time_ns()}-{os.getpid()}-{hashlib.sha256(raw).hexdigest()[:16]}"
    meta = json.dumps({
        "envelope_from": redact_text(envelope_from) if envelope_from is not None else None,
        "recipient": redact_text(recipient),
        "recipient_token": _claim(runtime, recipient),
        "error": redact_text(error),
    }, ensure_ascii=False)
    for suffix, data in ((".json", meta.encode()), (".eml", raw)):
        # the .eml last: a listed .eml is complete, and so is its .json
        write_private(folder / f".{name}{suffix}.tmp", folder / f"{name}{suffix}", data)
    return folder / f"{name}.eml"


def spooled(runtime: Runtime) -> Iterator[Spooled]:
    """The spooled mails, oldest first, with their recipients as they arrived."""
    folder = spool_dir(runtime)
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        yield Spooled(path, path.read_bytes(), meta.get("envelope_from"),
                      _recipient(runtime, meta))


def _claim(runtime: Runtime, recipient: str) -> dict[str, Any] | None:
    """What a reply or return address's token names, when it is one of ours."""
    kind, token = split_recipient(recipient, runtime.settings.mail_domain)
    if kind not in _SIGNED_KINDS or token is None:
        return None
    try:
        claim = runtime.tokens.verify(token, kind)
    except UserError:
        return None  # not a token of ours: nothing to keep, and the redacted text says so
    expires = int(claim.expires_at.timestamp()) if claim.expires_at is not None else None
    return {"kind": kind, "subject": claim.subject_id, "party": claim.party.value,
            "expires": expires}


def _recipient(runtime: Runtime, meta: dict[str, Any]) -> str:
    """The recipient as it arrived: a reply or return address signed again from what its
    token named (the same token: they do not expire); older spools wrote it in full."""
    recipient = str(meta.get("recipient") or "")
    claim = meta.get("recipient_token")
    if not claim:
        return recipient
    expires = claim.get("expires")
    token = runtime.tokens.sign(
        claim["kind"], int(claim["subject"]), Role(claim["party"]),
        None if expires is None else datetime.fromtimestamp(int(expires), UTC))
    return f"{claim['kind']}+{token}@{recipient.rpartition('@')[2]}"
