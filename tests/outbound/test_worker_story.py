"""Issue 3's story through the real roles: `ticketgw worker` (and `scheduler`) on each broker
deliver a refund opened by the CLI, and its processing after `deadlines run --at`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import unique_name, wait_until
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import CUSTOMER, VENDOR, seed_order


def _cli(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], env=env, cwd=cwd,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()


def _subjects(sink: SmtpSink) -> dict[tuple[str, str], str]:
    return {(m.message["To"].addresses[0].addr_spec, str(m.message["X-Ticket-Event"])):
            str(m.message["Subject"]) for m in sink.messages}


@pytest.mark.parametrize("broker", ["embedded", "redis", "rabbitmq"])
def test_worker_mails_the_refund_and_its_processing(broker: str, tmp_path: Path,
                                                    smtp_sink: SmtpSink,
                                                    request: pytest.FixtureRequest) -> None:
    namespace = unique_name("ticketgw_t_")
    if broker == "embedded":
        broker_url = "embedded"
    elif broker == "redis":
        broker_url = f"{request.getfixturevalue('redis_url')}?namespace={namespace}"
    else:  # a vhost of its own: RabbitMQ queues are not namespaced by other runs
        broker_url = f"{request.getfixturevalue('rabbitmq_vhost_url')}?namespace={namespace}"
    runtime = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path)
    seed_order(runtime, vendor_locale="de", customer_locale="fr")
    runtime.close()
    env = {**os.environ,
           "TICKETGW_DATABASE_URL": f"sqlite:///{tmp_path / 'ticketgw.db'}",
           "TICKETGW_SECRET_KEY": "test-secret", "TICKETGW_SMTP_RELAY": smtp_sink.address,
           "TICKETGW_BROKER_URL": broker_url}
    roles = ["worker"] if broker == "embedded" else ["worker", "scheduler"]
    logs = {role: tmp_path / f"{role}.log" for role in roles}
    procs = {}
    for role, log in logs.items():
        with log.open("wb") as out:
            procs[role] = subprocess.Popen([sys.executable, "-m", "ticketgw.cli", role],
                                           env=env, cwd=tmp_path, stderr=out)
    try:
        for role, log in logs.items():
            wait_until(lambda log=log: b"running" in log.read_bytes(), timeout=60,
                       message=f"{role} started")
        _cli(env, tmp_path, "ticket", "open", "ABCD1234", "--type", "refund", "--as",
             "customer", "--reason", "not_satisfied")
        smtp_sink.wait_for(2, timeout=60)
        _cli(env, tmp_path, "deadlines", "run", "--at", "2030-01-01T00:00:00Z")
        wait_until(lambda: len(smtp_sink.messages) >= 4, timeout=60,
                   message="the processed mails")
        subjects = _subjects(smtp_sink)
        # each party in its own language: the customer fr, the vendor de
        assert subjects[(CUSTOMER, "opened")] == \
            "Ticket ouvert - Demande de remboursement [Ticket #1001]"
        assert subjects[(VENDOR, "opened")].endswith("[Ticket #1001]")
        assert subjects[(VENDOR, "opened")] != subjects[(CUSTOMER, "opened")]
        assert {(CUSTOMER, "processed"), (VENDOR, "processed")} <= set(subjects)
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for role, proc in procs.items():
            assert proc.wait(timeout=60) == 0, logs[role].read_text()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
