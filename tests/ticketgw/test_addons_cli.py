"""The addons profile and vendors' reply texts through the `ticketgw` command, on SQLite and
PostgreSQL: support lines imported, the support gate, `vendor template` and `vendor
signature`."""

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

Run = Callable[..., subprocess.CompletedProcess[str]]
TODAY = datetime.now(UTC).replace(microsecond=0)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).strftime("%Y-%m-%d")


def line(receipt: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "receipt": receipt, "vendor": "acme", "sku": "module-1", "title": "Shipping Module",
        "customer_email": "ann@example.org", "customer_name": "Ann", "amount": "47.00",
        "currency": "EUR", "purchased_at": f"{day(-3)}T10:00:00Z", "locale": "en",
        "shop_url": "https://ann.example"}
    values.update(overrides)
    return values


def care(receipt: str, valid_until: str, shop_url: str) -> dict[str, Any]:
    return line(receipt, sku="care-module-1", title="Business Care", kind="support",
                covers_sku="module-1", amount="20.00", valid_until=valid_until,
                shop_url=shop_url, purchased_at=f"{day(-400)}T10:00:00Z")


@pytest.fixture
def cli(backend_url: str, tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    env.update(TICKETGW_DATABASE_URL=backend_url, TICKETGW_POLICY="addons")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"ticketgw {' '.join(args)} failed:\n{done.stderr}")
        return done

    run("vendor", "add", "acme", "--email", "sales@acme.example", "--locale", "fr")
    return run


def error_of(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode == 1, done.stdout
    error: dict[str, str] = json.loads(done.stderr)["error"]
    return error


def test_support_lines_and_the_gate_by_the_command_line(cli: Run, tmp_path: Path) -> None:
    lines = [line("MODULE1"), care("CARE1", day(-1), "https://ann.example"),
             line("MODULE2", shop_url="https://other.example"),
             line("MODULE3", customer_email="bob@example.org", shop_url="https://bob.example"),
             care("CARE3", day(300), "https://bob.example"),
             care("CAREBAD", day(300), "https://bob.example") | {"covers_sku": "nothing"}]
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    imported = json.loads(cli("orders", "import", "orders.jsonl", "--json", check=False).stdout)
    assert (imported["created"], imported["errors"]) == (5, [{
        "line": 6, "message": "covers_sku 'nothing' is not a product of this vendor; import "
        "the product's order first"}])
    expired = error_of(cli("ticket", "open", "MODULE1", "--type", "tech_support", "--as",
                           "customer", "--json", check=False))
    assert expired["code"] == "support_required"
    assert f"(CARE1) expired on {day(-1)}T23:59:59Z: renew" in expired["message"]
    other = error_of(cli("ticket", "open", "MODULE2", "--type", "tech_support", "--as",
                         "customer", "--json", check=False))
    assert "buy Business Care for module-1 (https://other.example)" in other["message"]
    opened = json.loads(cli("ticket", "open", "MODULE3", "--type", "tech_support", "--as",
                            "customer", "--json").stdout)
    assert opened["type"] == "tech_support"
    refund = error_of(cli("ticket", "open", "MODULE1", "--type", "refund", "--as", "customer",
                          "--reason", "malfunction", "--json", check=False))
    assert refund["code"] == "support_first"


def test_vendor_templates_and_signature_by_the_command_line(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("Bonjour {{ customer_name }},\nvotre {{ product }}.\n")
    (tmp_path / "bad.txt").write_text("Bonjour\n\n{{ ''.__class__ }}\n")
    (tmp_path / "unknown.txt").write_text("Bonjour {{ customer.email }}\n")
    (tmp_path / "sig.txt").write_text("-- \nAcme\n{{ vendor }}\n")
    added = json.loads(cli("vendor", "template", "add", "acme", "Hello", "--file", "hello.txt",
                           "--json").stdout)
    assert (added["name"], added["created"]) == ("hello", True)
    assert cli("vendor", "template", "add", "acme", "hello", "--file", "hello.txt"
               ).stdout == "template hello replaced\n"
    bad = error_of(cli("vendor", "template", "add", "acme", "bad", "--file", "bad.txt",
                       "--json", check=False))
    assert bad == {"code": "invalid_template", "message": "template 'bad', line 3: access to "
                   "attribute '__class__' of 'str' object is unsafe."}
    unknown = error_of(cli("vendor", "template", "add", "acme", "x", "--file", "unknown.txt",
                           "--json", check=False))
    assert unknown["message"].startswith("template 'x', line 1: unknown field 'customer'")
    listed = cli("vendor", "template", "list", "acme").stdout.splitlines()
    assert listed[0].split() == ["NAME", "UPDATED"] and listed[1].split()[0] == "hello"
    assert cli("vendor", "template", "show", "acme", "hello").stdout == (
        "Bonjour {{ customer_name }},\nvotre {{ product }}.\n")
    assert cli("vendor", "signature", "acme", "--file", "sig.txt").stdout == "signature set\n"
    assert cli("vendor", "signature", "acme").stdout == "Acme\n{{ vendor }}\n"
    assert cli("vendor", "signature", "acme", "--clear").stdout == "no signature any more\n"
    assert cli("vendor", "template", "remove", "acme", "hello").stdout == (
        "template hello removed\n")
    gone = error_of(cli("vendor", "template", "show", "acme", "hello", "--json", check=False))
    assert gone["code"] == "unknown_template"
