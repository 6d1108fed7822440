"""Wiring: read the configuration, build engine, clock, policy and tokens for every role."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from gateway.domain.clock import Clock, SystemClock
from gateway.domain.errors import ConfigError
from gateway.domain.policy import policy_for
from gateway.domain.redaction import redact_text
from gateway.domain.settings import Settings, parse_settings
from gateway.domain.tokens import Tokens
from gateway.services.execution import RecordingExecutor, RefundExecutor, WebhookExecutor
from gateway.services.key_check import check_key
from gateway.services.runtime import Runtime
from store.db import make_engine, make_sessions, migrate
from store.files import private_dir

log = logging.getLogger("ticketgw")


def load_settings(config_file: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `--config FILE` (TOML) overridden by TICKETGW_* environment variables."""
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as handle:
                values = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"configuration file {config_file} is not valid TOML: {exc}") from None
        values = values.get("ticketgw", values)
    settings = parse_settings(values, os.environ if environ is None else environ)
    if settings.database_url.startswith("sqlite:///") and not settings.database_url.startswith(
            "sqlite:////"):
        relative = settings.database_url[len("sqlite:///"):]
        if relative and relative != ":memory:":
            settings = replace(settings, database_url=f"sqlite:///{Path(relative).resolve()}")
    return settings


def ensure_secret(settings: Settings, var_dir: Path | None = None) -> Settings:
    """The signing key: configured, or generated once into var/secret.key (created exclusively)."""
    if settings.secret_key:
        return settings
    path = (var_dir or Path("var")) / "secret.key"
    private_dir(path.parent)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
    for _ in range(100):  # another first start may be between create and write
        text = path.read_text().strip()
        if text:
            return replace(settings, secret_key=text)
    raise ConfigError(f"{path} is empty; delete it or set TICKETGW_SECRET_KEY")


def build_runtime(settings: Settings, *, clock: Clock | None = None,
                  create_schema: bool = True) -> Runtime:
    settings = ensure_secret(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessions(engine)
    if create_schema:
        migrate(engine)
        check_key(sessions, settings.secret_key, engine.url.render_as_string(hide_password=True))
    policy = policy_for(settings.policy, weekend_pause=settings.weekend_pause,
                        dispute_limit=settings.dispute_limit)
    executor: RefundExecutor = (
        WebhookExecutor(settings.refund_webhook_url, settings.secret_key, policy)
        if settings.refund_webhook_url else RecordingExecutor(policy))
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        policy=policy,
        tokens=Tokens(settings.secret_key),
        clock=clock or SystemClock(),
        executor=executor,
    )


def existing_database(settings: Settings) -> None:
    """Refuse, with what to do, when a SQLite database file is not there yet: a command that
    only reads must not leave an empty database (and a `var/` folder) behind."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
        if not path.is_file():
            raise ConfigError(f"there is no database at {path}: run `ticketgw init` (or "
                              f"`ticketgw serve`) first, or set TICKETGW_DATABASE_URL",
                              code="database_not_ready")


def build_reader(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """A runtime for commands that only read: no schema created, no key generated (an
    unconfigured install gets a throw-away key; nothing read-only signs a link)."""
    existing_database(settings)
    if not settings.secret_key:
        path = Path("var") / "secret.key"
        key = path.read_text().strip() if path.is_file() else ""
        settings = replace(settings, secret_key=key or secrets.token_urlsafe(48))
    return build_runtime(settings, clock=clock, create_schema=False)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: structured logs that say what happened to every mail.

    Every text in it is redacted: a message, an extra field or an exception's text (a
    database driver's error quotes the values it refused) may carry a reply address, a
    signed link or an API key, and logs are read, shipped and kept by many."""

    _SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_"):
                data[key] = value if isinstance(value, (int, float, bool, type(None))) else (
                    redact_text(str(value)))
        if record.exc_info:
            data["error"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            data["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiosmtpd's "mail.log" says every SMTP command at INFO, reply addresses (their tokens)
    # included; intake's own line a mail says what became of it, with tokens redacted
    for noisy in ("mailparser", "alembic", "dramatiq", "uvicorn.access", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
