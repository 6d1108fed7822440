"""CPython's email test corpus through the real listener: every mail gets 2xx or 5xx."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.domain.facts import Role
from store.models import InboundMail
from tests.inbound.conftest import DOMAIN, SmtpServer, World, crlf

CORPUS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
FILES = sorted(CORPUS.glob("msg_*.txt"))


@pytest.mark.skipif(not FILES, reason="CPython's email test data is not installed")
def test_corpus_through_smtp(world: World) -> None:
    number = world.open()
    server = SmtpServer(world.runtime, rate=(10**6, 60))
    answers: dict[str, int] = {}
    try:
        client = server.client()
        for path in FILES:
            for rcpt in (f"support@{DOMAIN}", world.reply_address(number, Role.CUSTOMER)):
                assert client.mail("someone@example.org")[0] == 250
                assert client.rcpt(rcpt)[0] == 250
                code, _text = client.data(crlf(path.read_bytes()))
                answers[f"{path.name} {rcpt[:7]}"] = code
        client.quit()
    finally:
        server.stop()
    assert all(code // 100 in (2, 5) for code in answers.values()), answers
    with world.runtime.sessions() as session:
        states = session.execute(select(InboundMail.state)).scalars().all()
    assert "failed" not in states and len(states) == 2 * len(FILES)
