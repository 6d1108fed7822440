"""The program's JSON log lines carry no token, wherever in a record it hides."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from gateway.domain.facts import Role
from gateway.domain.links import Links
from gateway.domain.tokens import Tokens
from ticketgw.app import JsonFormatter

LINKS = Links(Tokens("test-secret"), "https://help.example", "tickets.example")
KEY = "tgw_Zx9abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_message_extra_fields_exception_and_stack_are_redacted() -> None:
    link = LINKS.ticket_page(7, Role.CUSTOMER, datetime(2027, 1, 1, tzinfo=UTC))
    reply = LINKS.reply_address(7, Role.VENDOR)
    try:
        raise RuntimeError(f"relay answered 550 for {reply}; key {KEY}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("ticketgw.outbound", logging.ERROR, __file__, 1,
                               "could not mail %s", (link,), exc_info, sinfo=f"stack {reply}")
    record.recipient = reply
    record.details = {"to": reply, "attempt": 2}
    line = JsonFormatter().format(record)
    secrets = [link.rsplit("/", 1)[1], reply.split("+")[1].split("@")[0], KEY[4:]]
    assert [s for s in secrets if s in line] == []
    data = json.loads(line)
    assert data["event"].startswith("could not mail https://help.example/t/")
    assert data["recipient"] == f"reply+{secrets[1][:4]}…@tickets.example"
    assert "RuntimeError: relay answered 550" in data["error"] and "tgw_Zx9a…" in data["error"]
