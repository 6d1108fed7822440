"""The shared services (ticketgw.testing.services) as the suite needs them: a service that
does not answer skips the test, or fails it when CI requires services (REQUIRE_ENV)."""

from __future__ import annotations

import pytest

from ticketgw.testing import services as shared
from ticketgw.testing.services import (  # noqa: F401 - the suite's names for them
    PG_ADMIN_URL,
    PG_DB_PREFIX,
    PG_HOST,
    PG_PORT,
    PG_USER,
    RABBITMQ_URL,
    REDIS_URL,
    REQUIRE_ENV,
    SERVICES,
    ServiceMissing,
    free_port,
    port_answers,
    postgres_url,
    rabbitmq_vhost,
    service_problem,
    services_required,
    unique_name,
    wait_until,
)


def require_service(name: str) -> None:
    """Skip the test when `name` does not answer; fail instead when CI requires services."""
    try:
        shared.require_service(name)
    except ServiceMissing as exc:
        if services_required():
            pytest.fail(f"{exc} ({REQUIRE_ENV}=1: required)", pytrace=False)
        pytest.skip(str(exc))
