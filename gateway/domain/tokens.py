"""Signed tokens: reply and return addresses (never expire) and web links (expire), HMAC-SHA256.

A token names what it grants (purpose, ticket, order or outbox row, party) and is checked in
constant time. Tokens are lower-case base32 so `reply+TOKEN@` and `bounce+TOKEN@` survive
case-folding by mail servers and stay inside the 64-octet local-part limit (RFC 5321
4.5.3.1.1): 47 characters of token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.domain.errors import UserError
from gateway.domain.facts import Role

_PARTY_CODE = {Role.CUSTOMER: 1, Role.VENDOR: 2, Role.STAFF: 3}
_CODE_PARTY = {code: role for role, code in _PARTY_CODE.items()}
_PURPOSE_CODE = {
    "reply": 1,  # reply address of a ticket
    "ticket": 2,  # the ticket page
    "receipt": 3,  # the receipt page of an order
    "confirm": 4,  # confirm an unverified legacy request
    "dispute": 5,  # "I did not agree"
    "to_refund": 6,  # turn tech support into a refund
    "bounce": 7,  # return path (envelope sender) of one outbox row: ties a bounce to our mail
    "signin": 8,  # a mailed sign-in link to the workplace (one `signin_links` row, used once)
    "session": 9,  # the workplace's session cookie (one `workplace_sessions` row)
    "attachment": 10,  # download one attachment (`/f/TOKEN/NAME`), for a ticket page's party
}
_MAC_BYTES = 15


class InvalidToken(UserError):
    code = "invalid_token"


@dataclass(frozen=True)
class Claim:
    purpose: str
    subject_id: int
    party: Role
    expires_at: datetime | None


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    text = text.strip().upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


class Tokens:
    def __init__(self, secret: str | bytes) -> None:
        if not secret:
            raise ValueError("the secret key is empty")
        key = secret.encode() if isinstance(secret, str) else secret
        self._key = hashlib.sha256(b"ticketgw-tokens\0" + key).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, purpose: str, subject_id: int, party: Role,
             expires_at: datetime | None = None) -> str:
        expiry = 0 if expires_at is None else int(expires_at.timestamp())
        body = struct.pack(">BQBI", _PURPOSE_CODE[purpose], subject_id, _PARTY_CODE[party], expiry)
        return _b32(body + self._mac(body))

    def verify(self, token: str, purpose: str, now: datetime | None = None) -> Claim:
        """The claim a token makes, or InvalidToken. Expired links fail once `now` passes."""
        try:
            raw = _unb32(token)
        except (ValueError, TypeError):
            raise InvalidToken("this link or address is not valid") from None
        size = struct.calcsize(">BQBI")
        if len(raw) != size + _MAC_BYTES:
            raise InvalidToken("this link or address is not valid")
        body, mac = raw[:size], raw[size:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidToken("this link or address is not valid")
        purpose_code, subject_id, party_code, expiry = struct.unpack(">BQBI", body)
        if purpose_code != _PURPOSE_CODE.get(purpose) or party_code not in _CODE_PARTY:
            raise InvalidToken("this link or address is not valid here")
        expires_at = datetime.fromtimestamp(expiry, UTC) if expiry else None
        if expires_at is not None and now is not None and now >= expires_at:
            raise InvalidToken(
                "this link has expired; use the link in a newer mail about the ticket",
                code="expired_token",
            )
        return Claim(purpose, subject_id, _CODE_PARTY[party_code], expires_at)

    def reply_token(self, ticket_number: int, party: Role) -> str:
        return self.sign("reply", ticket_number, party)

    def read_reply_token(self, token: str) -> Claim:
        return self.verify(token, "reply")

    def bounce_token(self, outbox_id: int, party: Role) -> str:
        """The token of `bounce+TOKEN@`, the envelope sender of outbox row `outbox_id`: a
        delivery report sent back to it is about that mail, and only that mail's recipient."""
        return self.sign("bounce", outbox_id, party)

    def read_bounce_token(self, token: str) -> Claim:
        return self.verify(token, "bounce")
