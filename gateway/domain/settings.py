"""Settings: the contract's configuration table, parsed from a plain mapping (pure)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.domain.errors import ConfigError

PREFIX = "TICKETGW_"


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/ticketgw.db"
    broker_url: str = "embedded"
    mail_domain: str = "tickets.localhost"
    smtp_listen: HostPort = HostPort("127.0.0.1", 2525)
    max_message_bytes: int = 26_214_400
    http_listen: HostPort = HostPort("127.0.0.1", 8080)
    base_url: str = "http://127.0.0.1:8080"
    smtp_relay: HostPort | None = None
    smtp_relay_user: str = ""
    smtp_relay_password: str = field(default="", repr=False)
    smtp_relay_starttls: bool = False
    outbox_maildir: str = "var/outbox"
    # one or more mailboxes, separated by spaces; their passwords or refresh tokens are secret
    imap_url: str = field(default="", repr=False)
    # OAuth2 for mailboxes whose URL says ?auth=xoauth2 or ?auth=oauthbearer (docs/operations.md)
    imap_oauth_token_url: str = ""
    imap_oauth_client_id: str = ""
    imap_oauth_client_secret: str = field(default="", repr=False)
    imap_oauth_scope: str = ""
    imap_oauth_refresh_token: str = field(default="", repr=False)
    imap_token_dir: str = "var/imap-tokens"
    operator_email: str = ""  # where a silent mailbox is reported; empty: staff_email
    secret_key: str = field(default="", repr=False)
    staff_email: str = "staff@tickets.localhost"
    policy: str = "clickbank"
    weekend_pause: bool = True
    dispute_limit: int = 2
    notify_cap: tuple[int, int] = (10, 600)
    max_attachment_bytes: int = 10_485_760
    link_ttl_days: int = 90
    trusted_authserv_id: str = ""
    smtp_processes: int = 1
    smtp_max_per_client: int = 20
    # a session's whole life (then 421), and commands in a row that send no mail (then 421)
    smtp_session_seconds: int = 600
    smtp_idle_commands: int = 20
    # STARTTLS on the inbound listener: a PEM certificate chain, and its key when it is not in
    # the same file; empty: no STARTTLS offered
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""
    refund_webhook_url: str = ""
    metrics_dir: str = "var/metrics"
    metrics_listen: HostPort | None = None
    # the name mail to vendors and staff comes from ("Marketplace Support"); mail to a
    # customer comes from the vendor's name
    marketplace_name: str = "Marketplace"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def address(self, local: str) -> str:
        return f"{local}@{self.mail_domain}"

    @property
    def imap_urls(self) -> tuple[str, ...]:
        """Each mailbox the IMAP poller reads, in the order given."""
        return tuple(u for u in re.split(r"[\s,]+", self.imap_url) if u)

    @property
    def operator_address(self) -> str:
        return self.operator_email or self.staff_email


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{PREFIX}{name.upper()} must be true or false, not {raw!r}")


def _int(name: str, raw: Any, *, minimum: int = 0) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{PREFIX}{name.upper()} must be at least {minimum}, not {value}")
    return value


def _hostport(name: str, raw: Any) -> HostPort:
    text = str(raw).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{PREFIX}{name.upper()} must be host:port, not {raw!r}")
    number = _int(name, port, minimum=0)
    if number > 65535:
        raise ConfigError(f"{PREFIX}{name.upper()}: port {number} is above 65535")
    return HostPort(host.strip("[]"), number)


def _database_url(raw: Any) -> str:
    text = str(raw).strip()
    scheme = text.split(":", 1)[0].lower()
    if scheme == "sqlite" or scheme.startswith("sqlite+"):
        return text
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        if scheme in ("postgresql", "postgres"):
            text = "postgresql+psycopg" + text[len(scheme):]
        return text
    raise ConfigError(
        f"TICKETGW_DATABASE_URL {raw!r} is not supported: use sqlite:///path "
        "or postgresql+psycopg://user@host/db"
    )


def _broker_url(raw: Any) -> str:
    text = str(raw).strip()
    if text == "embedded" or urlsplit(text).scheme in ("redis", "rediss", "amqp", "amqps"):
        return text
    raise ConfigError(
        f"TICKETGW_BROKER_URL {raw!r} is not supported: use embedded, redis://host:port/0 "
        "or amqp://user:password@host:5672/"
    )


def _url(name: str, raw: Any, schemes: tuple[str, ...]) -> str:
    text = str(raw).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(
            f"{PREFIX}{name.upper()} {raw!r} is not a valid URL (expected {' or '.join(schemes)})"
        )
    return text.rstrip("/") if name == "base_url" else text


def _imap_urls(name: str, raw: Any) -> str:
    """One URL, several separated by spaces or commas, or a TOML list: kept space-separated."""
    items = raw if isinstance(raw, list | tuple) else re.split(r"[\s,]+", str(raw))
    urls = [_url(name, item, ("imap", "imaps")) for item in items if str(item).strip()]
    return " ".join(urls)


def _cap(raw: Any) -> tuple[int, int]:
    text = str(raw).strip()
    count, sep, seconds = text.partition("/")
    if not sep:
        raise ConfigError(f"TICKETGW_NOTIFY_CAP must be COUNT/SECONDS such as 10/600, not {raw!r}")
    return _int("notify_cap", count, minimum=1), _int("notify_cap", seconds, minimum=1)


def _policy(raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in ("clickbank", "addons"):
        raise ConfigError(f"TICKETGW_POLICY must be clickbank or addons, not {raw!r}")
    return text


def _str(_name: str, raw: Any) -> str:
    return str(raw).strip()


_PARSERS: dict[str, Any] = {
    "database_url": lambda n, v: _database_url(v),
    "broker_url": lambda n, v: _broker_url(v),
    "mail_domain": _str,
    "smtp_listen": _hostport,
    "max_message_bytes": lambda n, v: _int(n, v, minimum=1024),
    "http_listen": _hostport,
    "base_url": lambda n, v: _url(n, v, ("http", "https")),
    "smtp_relay": lambda n, v: _hostport(n, v) if str(v).strip() else None,
    "smtp_relay_user": _str,
    "smtp_relay_password": lambda n, v: str(v),
    "smtp_relay_starttls": _bool,
    "outbox_maildir": _str,
    "imap_url": _imap_urls,
    "imap_oauth_token_url": lambda n, v: _url(n, v, ("http", "https")),
    "imap_oauth_client_id": _str,
    "imap_oauth_client_secret": lambda n, v: str(v).strip(),
    "imap_oauth_scope": _str,
    "imap_oauth_refresh_token": lambda n, v: str(v).strip(),
    "imap_token_dir": _str,
    "operator_email": lambda n, v: str(v).strip().lower(),
    "secret_key": _str,
    "staff_email": lambda n, v: str(v).strip().lower(),
    "policy": lambda n, v: _policy(v),
    "weekend_pause": _bool,
    "dispute_limit": lambda n, v: _int(n, v, minimum=1),
    "notify_cap": lambda n, v: _cap(v),
    "max_attachment_bytes": lambda n, v: _int(n, v, minimum=0),
    "link_ttl_days": lambda n, v: _int(n, v, minimum=1),
    "trusted_authserv_id": lambda n, v: str(v).strip().lower(),
    "smtp_processes": lambda n, v: _int(n, v, minimum=1),
    "smtp_max_per_client": lambda n, v: _int(n, v, minimum=1),
    "smtp_session_seconds": lambda n, v: _int(n, v, minimum=30),
    "smtp_idle_commands": lambda n, v: _int(n, v, minimum=3),
    "smtp_tls_cert": _str,
    "smtp_tls_key": _str,
    "refund_webhook_url": lambda n, v: _url(n, v, ("http", "https")),
    "metrics_dir": _str,
    "metrics_listen": lambda n, v: _hostport(n, v) if str(v).strip() else None,
    "marketplace_name": lambda n, v: " ".join(str(v).split())[:100] or "Marketplace",
}



def parse_settings(file_values: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Settings from a TOML file's table and the environment (the environment wins)."""
    merged: dict[str, Any] = {}
    for key, value in file_values.items():
        name = key.lower()
        if name not in _PARSERS:
            raise ConfigError(f"unknown setting {key!r} in the configuration file")
        merged[name] = value
    for key, value in environ.items():
        if key.startswith(PREFIX):
            name = key[len(PREFIX):].lower()
            if name in _PARSERS:
                merged[name] = value
    parsed = {name: _PARSERS[name](name, value) for name, value in merged.items()}
    if "mail_domain" in parsed and "staff_email" not in parsed:
        parsed["staff_email"] = f"staff@{parsed['mail_domain']}"
    if not str(parsed.get("mail_domain", "x")).strip():
        raise ConfigError("TICKETGW_MAIL_DOMAIN must not be empty")
    if parsed.get("smtp_tls_key") and not parsed.get("smtp_tls_cert"):
        raise ConfigError("TICKETGW_SMTP_TLS_KEY is set but TICKETGW_SMTP_TLS_CERT is not: "
                          "set the certificate too, or neither")
    return dataclasses.replace(Settings(), **parsed)
