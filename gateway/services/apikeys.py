"""API keys: made for a vendor or for staff, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain.errors import NotFound, UserError
from gateway.domain.facts import Role
from gateway.services import journal
from gateway.services.context import Actor, ServiceContext
from gateway.services.vendors import find_vendor
from store.models import ApiKey, Vendor

KEY_PREFIX = "tgw_"
SHOWN_CHARS = 8  # of the random part, kept beside the hash so people can tell keys apart


class InvalidKey(Exception):
    """The presented key is unknown or revoked; `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who a request with a valid key acts as: staff, or one vendor."""

    key_id: int
    staff: bool
    vendor_id: int | None = None
    vendor_nickname: str | None = None
    vendor_email: str | None = None

    @property
    def role(self) -> Role:
        return Role.STAFF if self.staff else Role.VENDOR

    def actor(self) -> Actor:
        return Actor(self.role, self.vendor_email, source="api")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, ctx: ServiceContext, *, vendor_nick: str | None = None,
               staff: bool = False) -> tuple[str, ApiKey, Vendor | None]:
    """A new key for one vendor or for staff: (the key itself, its row, the vendor).

    The key is returned here only; the database keeps its hash and a short prefix.
    """
    if staff == (vendor_nick is not None):
        raise UserError("an API key is either for one vendor (--vendor NICK) or for staff "
                        "(--staff)", code="invalid_field")
    vendor = find_vendor(session, vendor_nick) if vendor_nick is not None else None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(vendor_id=vendor.id if vendor else None, staff=staff,
                 prefix=key[:len(KEY_PREFIX) + SHOWN_CHARS], key_hash=key_hash(key),
                 created_at=ctx.now, revoked_at=None)
    session.add(row)
    session.flush()
    journal.record(session, ctx, Actor(Role.STAFF, source="cli"), "api_key",
                   vendor_id=vendor.id if vendor else None, new=row.prefix,
                   note="staff" if staff else None)
    return key, row, vendor


def authenticate(session: Session, key: str) -> Principal:
    """The principal a key stands for; InvalidKey when it is unknown or revoked.

    The lookup is by the key's SHA-256, so timing reveals nothing of a stored key; the
    final comparison is constant-time all the same.
    """
    digest = key_hash(key)
    row = None
    if key.startswith(KEY_PREFIX) and len(key) <= 128:
        row = session.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise InvalidKey("invalid_key", "this API key is not valid; check that it was copied "
                         "whole, or create a new one with `ticketgw apikey create`")
    if row.revoked_at is not None:
        raise InvalidKey("revoked_key", "this API key was revoked; create a new one with "
                         "`ticketgw apikey create`")
    if row.staff:
        return Principal(key_id=row.id, staff=True)
    vendor = session.get(Vendor, row.vendor_id)
    if vendor is None:  # the foreign key makes this impossible; refuse rather than guess
        raise InvalidKey("invalid_key", "this API key's vendor no longer exists")
    return Principal(key_id=row.id, staff=False, vendor_id=vendor.id,
                     vendor_nickname=vendor.nickname, vendor_email=vendor.mail_address)


def revoke_key(session: Session, ctx: ServiceContext, prefix: str) -> ApiKey:
    """Revoke the key shown as `prefix` (or its ID, as `apikey list` shows it); later
    requests with it answer 401."""
    wanted = ApiKey.id == int(prefix) if prefix.isdigit() else ApiKey.prefix == prefix
    rows = session.execute(select(ApiKey).where(wanted)).scalars().all()
    if len(rows) != 1:
        raise NotFound(f"no single API key with ID or prefix {prefix!r}; `ticketgw apikey "
                       f"list` shows them")
    row = rows[0]
    if row.revoked_at is None:
        row.revoked_at = ctx.now
        journal.record(session, ctx, Actor(Role.STAFF, source="cli"), "api_key_revoked",
                       vendor_id=row.vendor_id, old=row.prefix)
    return row
