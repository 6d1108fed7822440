"""The `ticketgw` command itself, run as a newcomer would, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ORDER = {"receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
         "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
         "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
         "purchased_at": "2026-11-20T10:00:00Z",
         "payments": [{"at": "2026-11-20T10:00:00Z", "amount": "47.00"}], "shipped": False,
         "locale": "en"}

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(backend_url: str, tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    env["TICKETGW_DATABASE_URL"] = backend_url

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"ticketgw {' '.join(args)} failed:\n{done.stderr}")
        return done

    return run


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def test_newcomer_story(cli: Run, tmp_path: Path) -> None:
    assert cli("init").returncode == 0
    assert cli("init").returncode == 0  # idempotent
    cli("vendor", "add", "acme", "--email", "sales@acme.example", "--timezone", "Europe/Berlin")
    (tmp_path / "orders.jsonl").write_text(json.dumps(ORDER) + "\n")
    assert as_json(cli("orders", "import", "orders.jsonl", "--json")) == {
        "created": 1, "updated": 0, "errors": []}
    assert as_json(cli("orders", "import", "orders.jsonl", "--json"))["updated"] == 1
    ticket = as_json(cli("ticket", "open", "ABCD1234", "--type", "refund", "--as", "customer",
                         "--reason", "not_satisfied", "--comment", "not for me",
                         "--at", "2026-11-23T10:00:00Z", "--json"))
    assert ticket["process_at"] == "2026-11-24T10:00:00Z"
    assert ticket["messages"][0]["text"] == "not for me"
    status = as_json(cli("status", "--json"))
    assert status["next_deadline"] == "2026-11-24T10:00:00Z" and status["open_tickets"] == 1
    ran = as_json(cli("deadlines", "run", "--at", "2026-11-24T10:00:00Z", "--json"))
    assert ran["processed"] == 1
    shown = as_json(cli("ticket", "show", str(ticket["number"]), "--json"))
    assert (shown["status"], shown["close_reason"]) == ("closed", "processed")
    assert shown["order_refunded_amount"] == "47.00"
    assert [e["kind"] for e in shown["events"]] == ["opened", "processed"]
    listed = as_json(cli("ticket", "list", "--json"))
    assert [t["number"] for t in listed] == [ticket["number"]] and "messages" not in listed[0]
    assert as_json(cli("ticket", "list", "--open", "--json")) == []
    human = cli("ticket", "show", str(ticket["number"])).stdout
    assert f"Ticket #{ticket['number']}" in human and "processed" in human


def test_import_reports_bad_lines_and_keeps_good_ones(cli: Run, tmp_path: Path) -> None:
    cli("vendor", "add", "acme", "--email", "sales@acme.example")
    lines = [
        json.dumps(ORDER),
        "{not json",
        json.dumps({**ORDER, "receipt": "BBBB0002", "vendor": "ghost"}),
        json.dumps({**ORDER, "receipt": "CCCC0003", "amount": "-5.00"}),
        json.dumps({**ORDER, "receipt": "DDDD0004"}),
    ]
    (tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n")
    done = cli("orders", "import", "orders.jsonl", "--json", check=False)
    assert done.returncode == 1
    result = as_json(done)
    assert (result["created"], result["updated"]) == (2, 0)
    assert [e["line"] for e in result["errors"]] == [2, 3, 4]
    assert "ghost" in result["errors"][1]["message"]
    assert "zero or more" in result["errors"][2]["message"]


def test_absurd_amounts_are_refused_with_a_sentence(cli: Run, tmp_path: Path) -> None:
    cli("vendor", "add", "acme", "--email", "sales@acme.example", "--partial-refunds")
    huge = {**ORDER, "receipt": "HUGE0001", "amount": "1e27", "payments": None}
    (tmp_path / "orders.jsonl").write_text(json.dumps(ORDER) + "\n" + json.dumps(huge) + "\n")
    imported = cli("orders", "import", "orders.jsonl", "--json", check=False)
    assert imported.returncode == 1
    assert as_json(imported)["errors"] == [{
        "line": 2, "message": "amount 1E+27 is more than an order can be worth (at most "
                              "1,000,000,000.00)"}]
    number = str(as_json(cli("ticket", "open", "ABCD1234", "--type", "refund", "--as",
                             "customer", "--at", "2026-11-23T10:00:00Z", "--json"))["number"])
    for action, value in (("partial", "1e999999"), ("partial", "1e27"), ("percent", "1e27"),
                          ("quantity", "1e999999")):
        done = cli("ticket", "act", number, action, value, "--as", "staff", "--json",
                   check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert json.loads(done.stderr)["error"]["code"] != "internal"
    shown = as_json(cli("ticket", "show", number, "--json"))
    assert (shown["refund_kind"], shown["refund_amount"]) == ("full", "47.00")


def test_csv_import(cli: Run, tmp_path: Path) -> None:
    cli("vendor", "add", "acme", "--email", "sales@acme.example")
    header = "receipt,vendor,sku,title,kind,recurring,customer_email,customer_name,quantity," \
             "amount,currency,purchased_at,payments"
    row = 'EEEE0005,acme,ebook-1,Guide,digital,false,bob@example.org,Bob,1,9.00,USD,' \
          '2026-11-20T10:00:00Z,"[{""at"": ""2026-11-20T10:00:00Z"", ""amount"": ""9.00""}]"'
    bad = "FFFF0006,acme,ebook-1,Guide,digital,false,bob@example.org,Bob,one,9.00,USD," \
          "2026-11-20T10:00:00Z,"
    (tmp_path / "orders.csv").write_text("\n".join([header, row, bad]) + "\n")
    done = cli("orders", "import", "orders.csv", "--json", check=False)
    result = as_json(done)
    assert result["created"] == 1
    assert result["errors"] == [{"line": 3, "message": "quantity 'one' is not a whole number"}]


def test_errors_are_json_on_stderr_with_nonzero_exit(cli: Run) -> None:
    done = cli("ticket", "show", "4242", "--json", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert json.loads(done.stderr)["error"]["code"] == "database_not_ready"  # reading made none
    cli("init")
    done = cli("ticket", "show", "4242", "--json", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert json.loads(done.stderr)["error"]["code"] == "not_found"
    done = cli("vendor", "add", "zed", "--email", "z@example.org", "--timezone", "Mars/Base",
               "--json", check=False)
    error = json.loads(done.stderr)["error"]
    assert done.returncode == 1 and "Mars/Base" in error["message"]
    done = cli("ticket", "show", "4242", check=False)
    assert "no ticket #4242" in done.stderr


def test_refused_action_changes_nothing(cli: Run, tmp_path: Path) -> None:
    cli("vendor", "add", "acme", "--email", "sales@acme.example")
    (tmp_path / "o.jsonl").write_text(json.dumps(ORDER) + "\n")
    cli("orders", "import", "o.jsonl")
    number = as_json(cli("ticket", "open", "ABCD1234", "--type", "refund", "--as", "customer",
                         "--at", "2026-11-23T10:00:00Z", "--json"))["number"]
    before = as_json(cli("ticket", "show", str(number), "--json"))
    done = cli("ticket", "act", str(number), "partial", "500", "--as", "vendor", "--json",
               check=False)
    assert done.returncode == 1 and json.loads(done.stderr)["error"]["message"]
    done = cli("ticket", "act", str(number), "reopen", "--as", "customer", "--json",
               check=False)
    assert done.returncode == 1
    assert as_json(cli("ticket", "show", str(number), "--json")) == before


def test_bad_configuration_value_is_named(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('notify_cap = "ten"\n')
    done = cli("status", "--config", str(config), check=False)
    assert done.returncode == 1 and "TICKETGW_NOTIFY_CAP" in done.stderr


@pytest.mark.postgres
def test_parallel_processes_get_distinct_ticket_numbers(pg_database_url: str,
                                                        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    env["TICKETGW_DATABASE_URL"] = pg_database_url

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)

    run("vendor", "add", "acme", "--email", "sales@acme.example")
    lines = [json.dumps({**ORDER, "receipt": f"RCPT{i:04d}"}) for i in range(8)]
    (tmp_path / "o.jsonl").write_text("\n".join(lines) + "\n")
    assert run("orders", "import", "o.jsonl").returncode == 0
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda i: run("ticket", "open", f"RCPT{i:04d}", "--type",
                                           "tech_support", "--as", "customer", "--json"),
                             range(8)))
    assert all(d.returncode == 0 for d in done), [d.stderr for d in done]
    numbers = sorted(json.loads(d.stdout)["number"] for d in done)
    assert numbers == list(range(1001, 1009))


def test_usage_errors_are_json_too(cli: Run) -> None:
    done = cli("ticket", "act", "1001", "bogus", "--as", "customer", "--json", check=False)
    assert done.returncode != 0 and done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["code"] == "usage" and "bogus" in error["message"]
    done = cli("ticket", "open", "ABCD1234", "--type", "refund", "--as", "customer", "--at",
               "yesterday", "--json", check=False)
    assert "ISO-8601" in json.loads(done.stderr)["error"]["message"]
