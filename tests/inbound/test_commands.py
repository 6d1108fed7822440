"""`#command` lines at the top of a reply."""

from __future__ import annotations

from gateway.domain.facts import Action
from inbound.commands import parse_commands


def test_commands_then_text() -> None:
    parsed = parse_commands("#partial 12.50\n\n#escalate the customer is rude\nHello\n#close")
    assert [(c.action, c.value) for c in parsed.commands] == [
        (Action.PARTIAL, "12.50"), (Action.ESCALATE, "the customer is rude")]
    assert parsed.text == "Hello\n#close" and parsed.unknown == ()


def test_every_documented_command() -> None:
    text = "#close\n#refund\n#techsupport\n#partial 3,5\n#full\n#escalate x\n#agree\n#dispute"
    parsed = parse_commands(text)
    assert [c.action for c in parsed.commands] == [
        Action.CLOSE, Action.REFUND, Action.TECHSUPPORT, Action.PARTIAL, Action.FULL,
        Action.ESCALATE, Action.AGREE, Action.DISPUTE]
    assert parsed.commands[3].value == "3.5"


def test_unknown_and_malformed() -> None:
    parsed = parse_commands("#closee\n#partial lots\n#close now\nbody")
    assert parsed.commands == () and len(parsed.unknown) == 3 and parsed.text == "body"


def test_hash_text_is_not_a_command() -> None:
    parsed = parse_commands("#1042 is still broken\n# heading")
    assert parsed.commands == () and parsed.unknown == ()
    assert parsed.text.startswith("#1042")
