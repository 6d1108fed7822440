"""`ticketgw outbox retry`, and the worker and scheduler roles stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from store.models import OutboxMail
from tests.support import unique_name, wait_until
from ticketgw.cli import main
from ticketgw.testing.runtime import make_runtime
from ticketgw.testing.smtp_sink import SmtpSink
from ticketgw.testing.story import open_refund, outbox, seed_order


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"TICKETGW_DATABASE_URL": f"sqlite:///{tmp_path / 'ticketgw.db'}",
           "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox")}
    env.update({f"TICKETGW_{k.upper()}": v for k, v in extra.items()})
    return env


def test_outbox_retry_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    runtime = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path)
    seed_order(runtime)
    open_refund(runtime)
    with runtime.sessions.begin() as session:
        session.execute(update(OutboxMail).values(state="failed", attempts=12,
                                                  last_error="relay answered 451"))
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    assert main(["outbox", "retry", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"requeued": 2}
    assert [(r.state, r.attempts) for r in outbox(runtime)] == [("pending", 0)] * 2
    runtime.close()


def _start(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "ticketgw.cli", role], env=env,
                                stderr=out)


def test_scheduler_refuses_the_embedded_broker(tmp_path: Path) -> None:
    env = {**os.environ, **_env(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "ticketgw.cli", "scheduler", "--json"], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 1
    assert b"needs a shared broker" in done.stderr


@pytest.mark.redis
def test_worker_and_scheduler_roles_deliver_and_stop_on_sigterm(
        tmp_path: Path, smtp_sink: SmtpSink, redis_url: str) -> None:
    namespace = unique_name("ticketgw_t_")
    runtime = make_runtime(f"sqlite:///{tmp_path / 'ticketgw.db'}", tmp_path)
    seed_order(runtime)
    env = {**os.environ, **_env(tmp_path, smtp_relay=smtp_sink.address,
                                broker_url=f"{redis_url}?namespace={namespace}")}
    logs = {role: tmp_path / f"{role}.log" for role in ("worker", "scheduler")}
    procs = {role: _start(role, env, log) for role, log in logs.items()}
    try:
        for role, log in logs.items():
            wait_until(lambda log=log: b"running" in log.read_bytes(), timeout=30,
                       message=f"{role} started")
        open_refund(runtime)  # the system clock is far past the frozen one: due at once
        smtp_sink.wait_for(2, timeout=30)
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for role, proc in procs.items():
            assert proc.wait(timeout=30) == 0, logs[role].read_text()
            assert b"stopped" in logs[role].read_bytes()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        runtime.close()
