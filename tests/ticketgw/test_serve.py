"""The whole story by mail alone against a real `ticketgw serve` process."""

from __future__ import annotations

import email
import json
import mailbox
import os
import signal
import smtplib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import free_port, wait_until

ORDER = {"receipt": "ABCD1234", "vendor": "acme", "sku": "ebook-1", "title": "Guide",
         "kind": "digital", "recurring": False, "customer_email": "ann@example.org",
         "customer_name": "Ann", "quantity": 1, "amount": "47.00", "currency": "USD",
         "purchased_at": "2026-11-02T10:00:00Z", "locale": "en"}


class Served:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
        self.env.update({
            "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{self.smtp_port}",
            "TICKETGW_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "TICKETGW_BASE_URL": f"http://127.0.0.1:{self.http_port}",
        })
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "ticketgw.cli", *args, "--json"],
                              cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self) -> None:
        with open(self.workdir / "serve.log", "wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ticketgw.cli", "serve"], cwd=self.workdir, env=self.env,
                stdout=subprocess.DEVNULL, stderr=log)

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.http_port}/healthz", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout=30, message="serve did not become healthy")

    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def send(self, sender: str, to: str, subject: str, body: str,
             **headers: str) -> tuple[int, bytes]:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = email.utils.make_msgid(domain="example.org")
        for name, value in headers.items():
            message[name.replace("_", "-")] = value
        message.set_content(body)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as client:
            client.ehlo()
            code, answer = client.mail(sender)
            assert code == 250
            code, answer = client.rcpt(to)
            if code != 250:
                return code, answer
            return client.data(message.as_bytes())

    def mails(self) -> list[EmailMessage]:
        box = mailbox.Maildir(self.workdir / "var" / "outbox", create=False)
        found = [email.message_from_bytes(m.as_bytes(), policy=default) for m in box]
        return sorted(found, key=lambda m: str(m["Message-ID"]))

    def wait_for(self, subject: str, count: int = 2) -> list[EmailMessage]:
        def matching() -> list[EmailMessage]:
            try:
                return [m for m in self.mails() if m["Subject"] == subject]
            except (FileNotFoundError, mailbox.NoSuchMailboxError):
                return []

        wait_until(lambda: len(matching()) >= count, timeout=30,
                   message=f"{count} mail(s) with subject {subject!r}")
        return matching()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    server.cli("vendor", "add", "acme", "--email", "sales@acme.example", "--timezone",
               "Europe/Berlin")
    (tmp_path / "orders.jsonl").write_text(json.dumps(ORDER) + "\n")
    server.cli("orders", "import", "orders.jsonl")
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def by_recipient(mails: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["To"]).split("<")[-1].rstrip(">"): m for m in mails}


def test_the_whole_story_by_mail(served: Served) -> None:
    code, _ = served.send("Ann <ann@example.org>", "support@tickets.localhost",
                          "Cannot download ABCD1234", "The download link says 404.")
    assert code == 250
    opened = by_recipient(served.wait_for(
        "Ticket Opened - Tech Support Request [Ticket #1001]"))
    assert set(opened) == {"ann@example.org", "sales@acme.example"}
    vendor_copy = opened["sales@acme.example"]
    assert vendor_copy["X-Ticket-Id"] == "1001" and vendor_copy["X-Ticket-Event"] == "opened"
    assert vendor_copy["Auto-Submitted"] == "auto-generated"

    code, _ = served.send("sales@acme.example", str(vendor_copy["Reply-To"]),
                          "Re: " + str(vendor_copy["Subject"]),
                          "Please try the link again now.\n\nOn Monday Ann wrote:\n> 404",
                          In_Reply_To=str(vendor_copy["Message-ID"]))
    assert code == 250
    replies = by_recipient(served.wait_for("Ticket Reply - Tech Support Request [Ticket #1001]"))
    assert "Please try the link again now." in replies["ann@example.org"].get_body(
        ("plain",)).get_content()

    customer_copy = replies["ann@example.org"]
    code, _ = served.send("ann@example.org", str(customer_copy["Reply-To"]),
                          "Re: " + str(customer_copy["Subject"]),
                          "#refund\nStill broken, I want my money back.")
    assert code == 250
    served.wait_for("Ticket Changed - Refund Request [Ticket #1001]")
    ticket = served.cli("ticket", "show", "1001")
    assert ticket["type"] == "refund" and ticket["process_at"] is not None

    # a stranger's forged reply naming the ticket is refused and changes nothing
    code, answer = served.send("eve@evil.example", "support@tickets.localhost",
                               "Re: Ticket Reply - Refund Request [Ticket #1001]", "#close")
    assert code == 550 and answer.startswith(b"5.7.1")
    assert served.cli("ticket", "show", "1001")["status"] == "open"

    ran = served.cli("deadlines", "run", "--at", "2030-01-01T00:00:00Z")
    assert ran["processed"] == 1
    processed = by_recipient(served.wait_for("Refund Processed [Ticket #1001]"))
    assert set(processed) == {"ann@example.org", "sales@acme.example"}
    assert served.cli("ticket", "show", "1001")["close_reason"] == "processed"
    assert served.stop() == 0, served.log()

    # one structured line a mail says what became of it; reply tokens never reach the log
    lines = [json.loads(line) for line in served.log().splitlines() if line.startswith("{")]
    fates = [(line["state"], line["ticket"], line["decision"]) for line in lines
             if line["logger"] == "ticketgw.inbound"]
    assert fates == [("applied", 1001, "opened"), ("applied", 1001, "threaded"),
                     ("applied", 1001, "threaded"), ("rejected", None, "rejected_not_party")]
    for copy in (vendor_copy, customer_copy):
        token = str(copy["Reply-To"]).split("+", 1)[1].split("@")[0]
        assert token not in served.log()
