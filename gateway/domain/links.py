"""The addresses and signed web links an outbound mail carries (pure: no clock, no database).

Subjects signed into tokens: a ticket page, reply address and action links name the ticket
*number* (what people see and what the web page looks up); a receipt page names the order's
database id (an order has no public number other than its receipt string).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.facts import Role
from gateway.domain.tokens import Tokens

# The one-click action pages and the token purpose each one carries.
ACTION_PATHS: dict[str, str] = {
    "confirm": "confirm",
    "dispute": "dispute",
    "to_refund": "to-refund",
}


def link_expiry(now: datetime, ttl_days: int) -> datetime:
    """When links in a mail written at `now` stop working (reply addresses never do)."""
    return now + timedelta(days=ttl_days)


@dataclass(frozen=True)
class Links:
    """Builds the links and addresses of one deployment: base URL, mail domain, signing key."""

    tokens: Tokens
    base_url: str
    mail_domain: str

    def _url(self, path: str, token: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}/{token}"

    def ticket_page(self, number: int, party: Role, expires_at: datetime) -> str:
        return self._url("t", self.tokens.sign("ticket", number, party, expires_at))

    def receipt_page(self, order_id: int, expires_at: datetime) -> str:
        """The customer's receipt page: the customer's alone (SPEC 11.15)."""
        return self._url("r", self.tokens.sign("receipt", order_id, Role.CUSTOMER, expires_at))

    def action(self, purpose: str, number: int, party: Role, expires_at: datetime) -> str:
        """A one-click page: `confirm`, `dispute` or `to_refund` (path `/a/to-refund/...`)."""
        path = ACTION_PATHS[purpose]
        return self._url(f"a/{path}", self.tokens.sign(purpose, number, party, expires_at))

    def reply_address(self, number: int, party: Role) -> str:
        """`reply+TOKEN@DOMAIN`: identifies ticket and party; never expires (SPEC 11.2)."""
        return f"reply+{self.tokens.reply_token(number, party)}@{self.mail_domain}"

    def bounce_address(self, outbox_id: int, party: Role) -> str:
        """`bounce+TOKEN@DOMAIN`: the envelope sender (return path) of one outbox row, so a
        delivery report names the mail it is about (VERP); never expires."""
        return f"bounce+{self.tokens.bounce_token(outbox_id, party)}@{self.mail_domain}"

    def signin_page(self, signin_id: int, party: Role, expires_at: datetime) -> str:
        """A mailed sign-in link to the workplace: one `signin_links` row, used once."""
        return self._url("signin", self.tokens.sign("signin", signin_id, party, expires_at))

    def workplace(self, path: str = "") -> str:
        """A workplace page (`/w/...`): no token in it; it asks to sign in when needed."""
        return f"{self.base_url.rstrip('/')}/w{'/' + path.strip('/') if path else ''}"

    def support_address(self) -> str:
        return f"support@{self.mail_domain}"
