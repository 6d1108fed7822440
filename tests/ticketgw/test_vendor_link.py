"""`ticketgw vendor link NICK` on SQLite and PostgreSQL: one sign-in link, mailed to every
address of the vendor and printed; the printed link signs in once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.domain.settings import parse_settings
from store.models import OutboxMail
from ticketgw.app import build_runtime
from web.app import create_app


def ticketgw(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticketgw.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_vendor_link_mails_and_prints_a_link_that_signs_in_once(migrated_url: str,
                                                                tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGW_")}
    env.update(TICKETGW_DATABASE_URL=migrated_url, TICKETGW_SECRET_KEY="test-secret",
               TICKETGW_BASE_URL="https://tickets.example")
    added = ticketgw(env, tmp_path, "vendor", "add", "acme", "--email", "sales@acme.example",
                     "--cs-email", "help@acme.example")
    assert added.returncode == 0, added.stderr
    done = ticketgw(env, tmp_path, "vendor", "link", "acme", "--json")
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["vendor"] == "acme"
    assert view["mailed_to"] == ["help@acme.example", "sales@acme.example"]
    assert re.fullmatch(r"https://tickets\.example/signin/[a-z2-7]{47}", view["link"])
    human = ticketgw(env, tmp_path, "vendor", "link", "acme")
    assert human.stdout.startswith("https://tickets.example/signin/")
    assert "mailed to help@acme.example, sales@acme.example; it works once" in human.stdout
    missing = ticketgw(env, tmp_path, "vendor", "link", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr

    runtime = build_runtime(parse_settings({}, {  # the real clock, as the command had
        "TICKETGW_DATABASE_URL": migrated_url, "TICKETGW_SECRET_KEY": "test-secret",
        "TICKETGW_BASE_URL": "https://tickets.example",
        "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox")}))
    try:
        with runtime.sessions() as session:
            sent = session.execute(select(OutboxMail.recipient).where(
                OutboxMail.event == "signin").order_by(OutboxMail.id)).scalars().all()
        assert sent == ["help@acme.example", "sales@acme.example"] * 2
        path = view["link"].removeprefix("https://tickets.example")
        with TestClient(create_app(runtime), base_url="https://tickets.example",
                        follow_redirects=False) as client:
            page = client.get(path)
            assert page.status_code == 200 and "Sign in as acme" in page.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf
            signed_in = client.post(path, data={"csrf": csrf.group(1)})
            assert signed_in.status_code == 303 and "ticketgw_session" in client.cookies
            assert client.post(path, data={"csrf": csrf.group(1)}).status_code == 410
    finally:
        runtime.close()
