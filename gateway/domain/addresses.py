"""What counts as an e-mail address a person gave us (orders, vendors, the receipt page)."""

from __future__ import annotations

import re

from gateway.domain.errors import UserError
from gateway.domain.texts import _

# One address, no display name: a local part of at most 64 octets (RFC 5321 4.5.3.1.1), @, and
# a domain with at least one dot; none of the characters that would make it several addresses
# or a header of its own.
_SPECIALS = r"\s@<>()\[\],;:\"\\"
_EMAIL = re.compile(rf"[^{_SPECIALS}]{{1,64}}@(?:[^{_SPECIALS}.]+\.)+[^{_SPECIALS}.]+")
MAX_LENGTH = 254  # RFC 5321 4.5.3.1.3: a path of 256 octets, less the angle brackets


def is_email_address(text: str) -> bool:
    return len(text) <= MAX_LENGTH and _EMAIL.fullmatch(text) is not None


def normalise_email(value: str, what: str) -> str:
    """`value` stripped and lower-cased, or a UserError naming `what` (a field, a setting)."""
    email = value.strip().lower()
    if not is_email_address(email):
        raise UserError(_("%(what)s %(value)s is not an email address; write it as "
                          "name@example.org", what=what, value=repr(value.strip())),
                        code="invalid_field")
    return email
