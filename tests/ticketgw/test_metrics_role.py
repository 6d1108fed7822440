"""`ticketgw smtp` with two listener processes: their counts land in the metrics directory
(var/metrics by default) and TICKETGW_METRICS_LISTEN serves the sums of both."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.domain.facts import Role
from tests.inbound.conftest import CUSTOMER, make_mail, seed
from tests.support import free_port, wait_until
from ticketgw.testing.runtime import make_runtime


def _received(url: str) -> float:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return -1.0
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "ticketgw_mails_received_total")


def test_two_listener_processes_are_summed_on_the_metrics_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'role.db'}"
    runtime = make_runtime(url, tmp_path)
    world = seed(runtime)
    number = world.open()
    runtime.close()
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}", "TICKETGW_SMTP_PROCESSES": "2",
           "TICKETGW_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}
    with open(tmp_path / "smtp.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ticketgw.cli", "smtp"], env=env,
                                stdout=log, stderr=log, cwd=tmp_path, start_new_session=True)
    scrape_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        wait_until(lambda: _received(scrape_url) == 0, timeout=60, message="metrics served")
        # two connections open at once: a listener with one more than its sibling hands the
        # new one over (inbound.balance), so each process takes mail on one of them
        rcpt = world.reply_address(number, Role.CUSTOMER)
        with _client(port) as first, _client(port) as second:
            for i in range(3):
                first.sendmail(CUSTOMER, [rcpt], make_mail(body=f"First {i}."))
                second.sendmail(CUSTOMER, [rcpt], make_mail(body=f"Second {i}."))
        wait_until(lambda: _received(scrape_url) == 6, timeout=30, message="6 counted")
        listeners = {int(p.stem.rsplit("_", 1)[1])
                     for p in (tmp_path / "var" / "metrics").glob("counter_*.db")}
        assert len(listeners - {proc.pid}) == 2  # each listener process counted
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, (tmp_path / "smtp.log").read_text()


def _client(port: int) -> smtplib.SMTP:
    def connect() -> smtplib.SMTP | None:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=30)
        except OSError:
            return None

    client = wait_until(connect, timeout=30, message="the listeners answer")
    assert client is not None
    return client
