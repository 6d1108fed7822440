"""Shared fixtures for the whole test suite."""

# --- infrastructure: real services, throw-away databases, SMTP sink, Dovecot ----------------
# (tests/support/; see its docstrings. Names: pg_admin_url, make_pg_database, pg_database_url,
# pg_module_database_url, redis_url, rabbitmq_url, rabbitmq_vhost_url, smtp_sink, dovecot.)
from tests.support.fixtures import (  # noqa: F401
    dovecot,
    make_pg_database,
    pg_admin_url,
    pg_database_url,
    pg_module_database_url,
    rabbitmq_url,
    rabbitmq_vhost_url,
    redis_url,
    smtp_sink,
)

# --- end of infrastructure block -------------------------------------------------------------
# --- store and services: a wired runtime on SQLite and PostgreSQL ---------------------------
from tests.support.runtime import backend, backend_url, migrated_url, runtime  # noqa: E402, F401
from tests.support.templates import pg_template, sqlite_template  # noqa: E402, F401
