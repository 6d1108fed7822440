"""Money actions through the real `ticketgw` command (SQLite and PostgreSQL): refused reopen,
requests that can no longer run, failures by ticket number, imports that would undo what we
recorded or that date things in the future, and `--at` in the future."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import free_port
from tests.ticketgw.test_cli import ORDER

Run = Callable[..., subprocess.CompletedProcess[str]]
CLUB = {**ORDER, "sku": "club", "title": "Club", "recurring": True}
OPENED = "2026-11-23T10:00:00Z"  # a Monday, after ORDER's purchase and before today


@pytest.fixture
def cli(backend_url: str, tmp_path: Path) -> Run:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    base["TICKETGW_DATABASE_URL"] = backend_url

    def run(*args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=tmp_path,
                              env={**base, **(env or {})}, capture_output=True, text=True,
                              timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"ticketgw {' '.join(args)} failed:\n{done.stderr}")
        return done

    run("vendor", "add", "acme", "--email", "sales@acme.example")
    return run


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def error_of(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode == 1 and done.stdout == "", done.stdout
    error: dict[str, str] = json.loads(done.stderr)["error"]
    return error


def import_(cli: Run, tmp_path: Path, *lines: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return cli("orders", "import", "orders.jsonl", "--json", check=False)


def open_(cli: Run, kind: str, at: str = OPENED) -> int:
    number: int = as_json(cli("ticket", "open", "ABCD1234", "--type", kind, "--as", "customer",
                              "--at", at, "--json"))["number"]
    return number


def test_reopen_of_a_refunded_ticket_is_refused_with_its_reason(cli: Run,
                                                                tmp_path: Path) -> None:
    import_(cli, tmp_path, ORDER)
    number = open_(cli, "refund")
    assert as_json(cli("deadlines", "run", "--at", "2026-11-24T10:00:00Z", "--json"))[
        "processed"] == 1
    before = as_json(cli("ticket", "show", str(number), "--json"))
    error = error_of(cli("ticket", "act", str(number), "reopen", "--as", "staff", "--comment",
                         "customer called", "--json", check=False))
    assert error["code"] == "conflict"
    assert error["message"].startswith("this order has already been refunded in full (47.00)")
    assert "cannot be reopened" in error["message"]
    assert as_json(cli("ticket", "show", str(number), "--json")) == before


def test_deadlines_name_tickets_by_number(cli: Run, tmp_path: Path) -> None:
    import_(cli, tmp_path, CLUB)
    open_(cli, "refund")
    cancellation = open_(cli, "cancellation", "2026-11-23T10:01:00Z")
    ran = as_json(cli("deadlines", "run", "--at", "2026-11-25T10:00:00Z", "--json"))
    assert (ran["processed"], ran["failed"]) == (1, [])
    assert [item["number"] for item in ran["not_processed"]] == [cancellation]
    assert "already cancelled" in ran["not_processed"][0]["reason"]
    shown = as_json(cli("ticket", "show", str(cancellation), "--json"))
    assert (shown["status"], shown["escalated"], shown["process_at"]) == ("open", True, None)
    human = cli("deadlines", "run", "--at", "2026-12-01T10:00:00Z").stdout
    assert human.startswith("0 processed")  # nothing is tried again


def test_a_failed_deadline_is_reported_by_ticket_number(cli: Run, tmp_path: Path) -> None:
    import_(cli, tmp_path, ORDER)
    number = open_(cli, "refund")
    nobody = {"TICKETGW_REFUND_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/refunds"}
    done = cli("deadlines", "run", "--at", "2026-11-24T10:00:00Z", "--json", check=False,
               env=nobody)
    assert done.returncode == 1
    assert [item["number"] for item in as_json(done)["failed"]] == [number]
    human = cli("deadlines", "run", "--at", "2026-11-24T10:00:00Z", check=False, env=nobody)
    assert f"  #{number} failed: RetryLater: refund webhook unreachable" in human.stdout


def test_reimport_keeps_our_cancellation(cli: Run, tmp_path: Path) -> None:
    import_(cli, tmp_path, CLUB)
    number = open_(cli, "cancellation")
    cli("deadlines", "run", "--at", "2026-11-24T10:00:00Z")
    assert as_json(import_(cli, tmp_path, CLUB)) == {"created": 0, "updated": 1, "errors": []}
    error = error_of(cli("ticket", "open", "ABCD1234", "--type", "cancellation", "--as",
                         "customer", "--json", check=False))
    assert error["message"].startswith("this subscription is already cancelled")
    later = {**CLUB, "payments": [*ORDER["payments"],
                                  {"at": "2026-11-25T10:00:00Z", "amount": "47.00"}]}
    done = import_(cli, tmp_path, ORDER | {"receipt": "OTHER001"}, later)
    assert done.returncode == 1
    assert as_json(done)["errors"] == [{"line": 2, "message": (
        "the payment of 2026-11-25T10:00:00Z comes after the subscription was cancelled on "
        f"2026-11-24T10:00:00Z (ticket #{number}), and a cancelled subscription takes no "
        "further bills")}]


def test_import_reports_every_error_of_a_line(cli: Run, tmp_path: Path) -> None:
    bad = {**ORDER, "quantity": 0, "purchased_at": "2099-01-01T00:00:00Z",
           "payments": [{"at": "2026-11-01T10:00:00Z", "amount": "99.00"}]}
    done = import_(cli, tmp_path, ORDER, bad)
    assert done.returncode == 1
    assert [e["line"] for e in as_json(done)["errors"]] == [2]
    message = as_json(done)["errors"][0]["message"]
    parts = message.split("; ")
    assert parts[0] == "quantity must be at least 1, not 0"
    assert parts[1].startswith("purchased_at 2099-01-01T00:00:00Z is in the future (it is now ")
    assert parts[2:] == [
        "the payment of 2026-11-01T10:00:00Z is before purchased_at 2099-01-01T00:00:00Z",
        "the payment of 2026-11-01T10:00:00Z (99.00) is more than the order's amount (47.00)"]
    human = cli("orders", "import", "orders.jsonl", check=False).stdout.splitlines()
    assert human[1].startswith("  line 2: quantity must be at least 1, not 0; purchased_at ")
    assert human[1].endswith(message[message.index(") is more"):])


def test_ticket_open_at_a_future_instant_is_refused(cli: Run, tmp_path: Path) -> None:
    import_(cli, tmp_path, ORDER)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    error = error_of(cli("ticket", "open", "ABCD1234", "--type", "refund", "--as", "staff",
                         "--at", tomorrow, "--json", check=False))
    assert error["code"] == "invalid_value"
    assert error["message"].startswith(f"--at {tomorrow} is in the future")
    assert as_json(cli("ticket", "list", "--json")) == []
    number = str(open_(cli, "refund"))
    before = as_json(cli("ticket", "show", number, "--json"))
    error = error_of(cli("ticket", "act", number, "close", "--as", "staff", "--at",
                         tomorrow, "--json", check=False))
    assert error["code"] == "invalid_value"
    assert as_json(cli("ticket", "show", number, "--json")) == before
