"""Shared test helpers: real services on loopback, an SMTP sink and a private Dovecot."""

from tests.support.services import (
    PG_ADMIN_URL,
    RABBITMQ_URL,
    REDIS_URL,
    free_port,
    postgres_url,
    rabbitmq_vhost,
    require_service,
    service_problem,
    unique_name,
    wait_until,
)

__all__ = [
    "PG_ADMIN_URL",
    "RABBITMQ_URL",
    "REDIS_URL",
    "free_port",
    "postgres_url",
    "rabbitmq_vhost",
    "require_service",
    "service_problem",
    "unique_name",
    "wait_until",
]
