"""Money actions through the real `ticketgw` command (SQLite and PostgreSQL): refused reopen,
requests that can no longer run, failures by ticket number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
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
