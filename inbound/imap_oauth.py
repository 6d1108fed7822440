"""OAuth2 access tokens for IMAP mailboxes: refreshed before they expire, kept owner-only.

Microsoft 365 and Gmail refuse password logins; they take an access token (XOAUTH2 or
OAUTHBEARER) that lives about an hour and is got from a long-lived refresh token at the
provider's token endpoint (RFC 6749 section 6). Authlib's OAuth2Session does that request.
Microsoft may answer with a new refresh token and stop honouring the old one, so the newest
one is kept with the access token in a file only the owner may read (0600 in a 0700 folder,
TICKETGW_IMAP_TOKEN_DIR). No token is ever logged or put in an exception's message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from requests import RequestException

from gateway.domain.clock import Clock
from gateway.domain.errors import ConfigError
from gateway.domain.settings import Settings
from inbound.imap_client import PASSWORD, ImapAccount

log = logging.getLogger("ticketgw.imap")

# refresh this long before the access token expires: a pass, a fetch of 25 MB mails and a
# slow server all fit in it
REFRESH_MARGIN = timedelta(minutes=5)
HTTP_TIMEOUT = 30.0


class RefreshFailed(Exception):
    """The token endpoint gave no access token (a revoked refresh token, a wrong client
    secret, the endpoint down). The message names the error code, never a token."""


class TokenKeeper:
    """The access token of one mailbox; `__call__(fresh)` is the imap_client.TokenSource."""

    def __init__(self, account: ImapAccount, settings: Settings, clock: Clock) -> None:
        if account.auth == PASSWORD:
            raise ConfigError(f"{account.key} logs in with a password, not OAuth2")
        self.account, self.clock = account, clock
        self.token_url = settings.imap_oauth_token_url
        self.client_id = settings.imap_oauth_client_id
        self.client_secret = settings.imap_oauth_client_secret
        self.scope = settings.imap_oauth_scope or None
        self.configured = account.password or settings.imap_oauth_refresh_token
        if not (self.token_url and self.client_id and self.configured):
            raise ConfigError(
                f"{account.key} logs in with {account.auth}: set TICKETGW_IMAP_OAUTH_TOKEN_URL, "
                "TICKETGW_IMAP_OAUTH_CLIENT_ID and a refresh token (the URL's password or "
                "TICKETGW_IMAP_OAUTH_REFRESH_TOKEN)")
        name = hashlib.sha256(account.key.encode()).hexdigest()[:24]
        self.path = Path(settings.imap_token_dir) / f"{name}.json"

    def __call__(self, fresh: bool = False) -> str:
        return self.access_token(fresh=fresh)

    def access_token(self, *, fresh: bool = False) -> str:
        """The stored access token while it has REFRESH_MARGIN left, else a refreshed one."""
        stored = self._load()
        expires_at = float(stored.get("expires_at") or 0)
        if (not fresh and stored.get("access_token")
                and self.clock.now().timestamp() < expires_at - REFRESH_MARGIN.total_seconds()):
            return str(stored["access_token"])
        return self._refresh(str(stored.get("refresh_token") or self.configured))

    def expires_at(self) -> datetime | None:
        stored = self._load()
        return (datetime.fromtimestamp(float(stored["expires_at"]), tz=self.clock.now().tzinfo)
                if stored.get("expires_at") else None)

    def _refresh(self, refresh_token: str) -> str:
        session = OAuth2Session(self.client_id, self.client_secret or None, scope=self.scope,
                                token_endpoint_auth_method="client_secret_post",
                                default_timeout=HTTP_TIMEOUT)
        try:
            token: dict[str, Any] = dict(session.refresh_token(
                self.token_url, refresh_token=refresh_token))
        except AuthlibBaseError as exc:  # the endpoint said no: error code and description
            raise RefreshFailed(f"{self.account.key}: token refresh refused: "
                                f"{exc.error}: {exc.description or ''}".strip()) from None
        except (RequestException, ValueError) as exc:  # unreachable, or not JSON
            raise RefreshFailed(f"{self.account.key}: token endpoint failed: "
                                f"{type(exc).__name__}") from None
        finally:
            session.close()
        if not token.get("access_token"):
            raise RefreshFailed(f"{self.account.key}: the token endpoint gave no access token")
        now = self.clock.now().timestamp()
        expires_in = float(token.get("expires_in") or 3600)
        self._save({"access_token": token["access_token"], "expires_at": now + expires_in,
                    # a provider that rotates refresh tokens sends the one to use next
                    "refresh_token": token.get("refresh_token") or refresh_token,
                    "configured": _fingerprint(self.configured)})
        log.info("imap oauth2 token refreshed", extra={
            "mailbox": self.account.key, "expires_in": int(expires_in)})
        return str(token["access_token"])

    def _load(self) -> dict[str, Any]:
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        # the operator configured another refresh token (after a revocation): forget ours
        if not isinstance(stored, dict) or stored.get("configured") != _fingerprint(
                self.configured):
            return {}
        return stored

    def _save(self, data: dict[str, Any]) -> None:
        """Written whole (a temporary file renamed over the old), readable by the owner only."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
