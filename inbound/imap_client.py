"""The IMAP side of the poller: the account, the connection, its folders, and waiting for mail.

The account comes from TICKETGW_IMAP_URL; mail is moved to the folders; new mail is waited
for with IDLE; and a Backoff paces the reconnects."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from imaplib import IMAP4
from urllib.parse import parse_qs, unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from gateway.domain.errors import ConfigError

PASSWORD, XOAUTH2, OAUTHBEARER = "password", "xoauth2", "oauthbearer"
AUTH_METHODS = (PASSWORD, XOAUTH2, OAUTHBEARER)
PROCESSED, REJECTED, FAILED = "Processed", "Rejected", "Failed"
FOLDERS = (PROCESSED, REJECTED, FAILED)
POLL_SECONDS = 30.0
IDLE_SECONDS = 290.0  # RFC 2177: re-issue IDLE at least every 29 minutes; servers cut sooner
MAX_BACKOFF_SECONDS = 60.0
_DELETED = b"\\Deleted"
# What a broken or refused connection raises: reconnect after a pause.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, IMAP4.error, OSError)


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"
    tls: bool = False
    auth: str = PASSWORD  # or XOAUTH2 / OAUTHBEARER: `password` is then the refresh token

    @property
    def key(self) -> str:
        """The ImapState row of this account and mailbox (the password is not part of it)."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"[:500]


def parse_imap_url(url: str) -> ImapAccount:
    """`imap://user:password@host:port/INBOX` or `imaps://...`; user and password URL-encoded.
    `?auth=xoauth2` or `?auth=oauthbearer` logs in with OAuth2; the password, if any, is then
    the mailbox's refresh token (else TICKETGW_IMAP_OAUTH_REFRESH_TOKEN)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ConfigError(f"TICKETGW_IMAP_URL must be imap:// or imaps://, not {redact_url(url)!r}")
    if not parts.username:
        raise ConfigError("TICKETGW_IMAP_URL needs a user: imap://user:password@host/INBOX")
    tls = parts.scheme == "imaps"
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError:
        raise ConfigError(f"TICKETGW_IMAP_URL has a bad port: {redact_url(url)!r}") from None
    # RFC 5092 allows ";UIDVALIDITY=..." and similar after the mailbox name: not ours to use
    mailbox = unquote(parts.path.lstrip("/").split(";", 1)[0]) or "INBOX"
    auth = (parse_qs(parts.query).get("auth") or [PASSWORD])[0].lower()
    if auth not in AUTH_METHODS:
        raise ConfigError(f"TICKETGW_IMAP_URL: auth must be one of {', '.join(AUTH_METHODS)}, "
                          f"not {auth!r}")
    return ImapAccount(parts.hostname, port, unquote(parts.username),
                       unquote(parts.password or ""), mailbox, tls, auth)


def imap_accounts(urls: Iterable[str]) -> list[ImapAccount]:
    """Every mailbox of TICKETGW_IMAP_URL; two URLs naming the same mailbox are refused."""
    accounts = [parse_imap_url(url) for url in urls]
    keys = [account.key for account in accounts]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"TICKETGW_IMAP_URL names the mailbox {key} twice")
    return accounts


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


# Hands out an access token for an account; `fresh` asks for a new one (the server refused
# the last). Implemented by inbound.imap_oauth.TokenKeeper.
TokenSource = Callable[[bool], str]


class LoginFailed(Exception):
    """The server refused the login (the password or token), as opposed to a broken line."""


def connect(account: ImapAccount, timeout: float = 60.0, *,
            token: TokenSource | None = None) -> IMAPClient:
    """A logged-in client (the caller logs out, or uses it as a context manager). An OAuth2
    account logs in with `token()`; when the server refuses it, once more with a fresh one
    (a token can be revoked or expire early), then LoginFailed."""
    context = ssl.create_default_context() if account.tls else None
    client = IMAPClient(account.host, port=account.port, ssl=account.tls, ssl_context=context,
                        timeout=timeout)
    try:
        _login(client, account, token)
    except BaseException:
        client.shutdown()
        raise
    return client


def _login(client: IMAPClient, account: ImapAccount, token: TokenSource | None) -> None:
    if account.auth == PASSWORD:
        try:
            client.login(account.user, account.password)
        except LoginError as exc:
            raise LoginFailed(f"{account.user}: {exc}") from None
        return
    if token is None:
        raise ConfigError(f"{account.key} logs in with {account.auth}: no token source")
    for fresh in (False, True):
        try:
            if account.auth == XOAUTH2:
                client.oauth2_login(account.user, token(fresh))
            else:
                client.oauthbearer_login(account.user, token(fresh))
            return
        except LoginError as exc:
            # the server's words only: they never carry the token
            error = f"{account.user}: {account.auth} refused: {exc}"
    raise LoginFailed(error)


def ensure_folders(client: IMAPClient, names: Iterable[str] = FOLDERS) -> None:
    existing = {str(name) for _flags, _sep, name in client.list_folders()}
    for name in names:
        if name not in existing:
            client.create_folder(name)


def move_message(client: IMAPClient, uid: int, folder: str) -> None:
    """MOVE (RFC 6851) when offered; else COPY, \\Deleted and UID EXPUNGE (RFC 4315), which
    removes only this mail. Without UIDPLUS a plain EXPUNGE is all IMAP offers."""
    if client.has_capability("MOVE"):
        client.move([uid], folder)
        return
    client.copy([uid], folder)
    client.add_flags([uid], [_DELETED])
    if client.has_capability("UIDPLUS"):
        client.expunge([uid])
    else:
        client.expunge()


def wait_for_mail(client: IMAPClient, stop: threading.Event, *, seen_uid: int = 0,
                  poll_seconds: float = POLL_SECONDS, idle_seconds: float = IDLE_SECONDS) -> None:
    """Until the server reports a change (IDLE, RFC 2177), `idle_seconds` pass, or `stop`;
    without IDLE, `poll_seconds`."""
    if not client.has_capability("IDLE"):
        stop.wait(poll_seconds)
        return
    # Mail that arrived during the pass was announced (EXISTS) in answer to an earlier
    # command, and IDLE does not announce it again: look for it first. Mail that arrives
    # while the search runs is announced in answer to the search itself, after the server
    # chose its results: imapclient leaves that EXISTS with imaplib, whose public
    # `response()` hands it over; one there means a new pass, not a 290 s wait.
    _announced(client)
    if any(uid > seen_uid for uid in client.search(["UID", f"{seen_uid + 1}:*", "NOT",
                                                    "DELETED"])):
        return
    if _announced(client):
        return
    deadline = time.monotonic() + idle_seconds
    client.idle()
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            # short checks so a stop request is seen within a second
            if client.idle_check(timeout=1):
                return
    finally:
        client.idle_done()


def _announced(client: IMAPClient) -> bool:
    """Whether the server announced new mail (EXISTS) since the last look; forgets it."""
    _, data = client._imap.response("EXISTS")
    return any(item is not None for item in data)


class Backoff:
    """1, 2, 4 ... seconds between reconnects, at most MAX_BACKOFF_SECONDS."""

    def __init__(self, first: float = 1.0, limit: float = MAX_BACKOFF_SECONDS) -> None:
        self.first, self.limit, self.current = first, limit, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.limit)
        return delay

    def reset(self) -> None:
        self.current = self.first
