"""The refund webhook: a signed POST to a real HTTP server, retried until it answers 2xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway.domain.facts import TicketType
from gateway.services.execution import WebhookExecutor
from gateway.services.runtime import Runtime
from tests.gateway.test_services import BERLIN_THU_10, open_, run, setup_shop, show


class Receiver:
    def __init__(self) -> None:
        self.status = 500
        self.calls: list[tuple[dict[str, Any], str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append((json.loads(body), self.headers["X-Ticketgw-Signature"]))
                outer.bodies.append(body)
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.bodies: list[bytes] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/refunds"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_webhook_is_signed_and_retried_until_accepted(runtime: Runtime,
                                                      receiver: Receiver) -> None:
    runtime.executor = WebhookExecutor(receiver.url, "test-secret", runtime.policy)
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.REFUND)
    due = BERLIN_THU_10 + timedelta(days=1)
    first = run(runtime, due)
    assert first.processed == 0 and len(first.failed) == 1 and "HTTP 500" in first.failed[0][1]
    assert show(runtime, 1001)["status"] == "open"
    assert show(runtime, 1001)["order_refunded_amount"] == "0.00"
    receiver.status = 200
    assert run(runtime, due).processed == 1
    assert show(runtime, 1001)["order_refunded_amount"] == "47.00"
    assert run(runtime, due).total == 0
    events = [call[0] for call in receiver.calls]
    assert [e["idempotency_key"] for e in events] == ["ticket-1001-refund"] * 2
    assert events[-1]["amount"] == "47.00" and events[-1]["receipt"] == "ABCD1234"
    key = hashlib.sha256(b"ticketgw-webhook\0" + b"test-secret").digest()
    expected = "sha256=" + hmac.new(key, receiver.bodies[-1], hashlib.sha256).hexdigest()
    assert receiver.calls[-1][1] == expected


def test_unreachable_webhook_keeps_the_ticket_due(runtime: Runtime) -> None:
    runtime.executor = WebhookExecutor("http://127.0.0.1:9/none", "k", runtime.policy,
                                       timeout=2)
    setup_shop(runtime)
    open_(runtime, BERLIN_THU_10, TicketType.REFUND)
    result = run(runtime, BERLIN_THU_10 + timedelta(days=1))
    assert result.processed == 0 and "unreachable" in result.failed[0][1]
    assert show(runtime, 1001)["status"] == "open"
