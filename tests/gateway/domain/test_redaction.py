"""Redaction of tokens and API keys in what operators read."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.domain.facts import Role
from gateway.domain.links import Links
from gateway.domain.redaction import API_KEY_PREFIX, redact, redact_text, redact_token
from gateway.domain.tokens import Tokens
from gateway.services.apikeys import KEY_PREFIX

TOKENS = Tokens("test-secret")
LINKS = Links(TOKENS, "https://help.example", "tickets.example")
LATER = datetime(2027, 1, 1, tzinfo=UTC)


def test_reply_address_keeps_four_characters_and_the_domain() -> None:
    token = TOKENS.reply_token(1042, Role.CUSTOMER)
    text = f"recipient reply+{token}@tickets.example refused"
    assert redact_text(text) == f"recipient reply+{token[:4]}…@tickets.example refused"


def test_every_kind_of_secret_is_cut() -> None:
    secrets_in_text = {
        LINKS.reply_address(7, Role.VENDOR): "reply+",
        f"bounce+{TOKENS.sign('reply', 9, Role.CUSTOMER)}@tickets.example": "bounce+",
        LINKS.ticket_page(7, Role.CUSTOMER, LATER): "/t/",
        LINKS.receipt_page(3, LATER): "/r/",
        LINKS.action("dispute", 7, Role.CUSTOMER, LATER): "/a/dispute/",
        LINKS.action("to_refund", 7, Role.CUSTOMER, LATER): "/a/to-refund/",
        f"/f/{TOKENS.sign('attachment', 12, Role.VENDOR, LATER)}/shot.png": "/f/",
        f"Authorization: Bearer {API_KEY_PREFIX}Zx_9-abcdefghijklmnopqrstuvwxyz0123456": "tgw_",
    }
    for secret, prefix in secrets_in_text.items():
        token = secret.split(prefix, 1)[1].split("@")[0].split("/")[0]
        out = redact_text(f"a line with {secret} in it")
        assert token not in out and f"{prefix}{token[:4]}…" in out, out


def test_upper_case_url_encoded_and_cut_off_tokens() -> None:
    token = TOKENS.reply_token(5, Role.CUSTOMER)
    for text in (f"REPLY+{token.upper()}@X", f"mailto:reply%2B{token}%40x",
                 f"(b'To: reply+{token[:30]}... (812 characters truncated) ...')"):
        assert token[4:20].lower() not in redact_text(text).lower(), text


def test_redacting_twice_changes_nothing_and_plain_text_is_left_alone() -> None:
    once = redact_text(LINKS.reply_address(7, Role.VENDOR))
    assert redact_text(once) == once
    plain = ("ann+shop@example.org wrote to support@tickets.example about /t/short "
             "and sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    assert redact_text(plain) == plain
    assert redact_token("abc") == "abc"


def test_nested_values() -> None:
    token = TOKENS.reply_token(5, Role.CUSTOMER)
    rows = [{"recipient": f"reply+{token}@x", "ticket": 5, "tags": ("a", f"reply+{token}@x")}]
    assert redact(rows) == [{"recipient": f"reply+{token[:4]}…@x", "ticket": 5,
                             "tags": ["a", f"reply+{token[:4]}…@x"]}]


def test_api_key_prefix_is_the_services_one() -> None:
    assert API_KEY_PREFIX == KEY_PREFIX
