"""parse_mail on the crafted corpus in tests/data, CPython's corpus and fuzzed bytes."""

from __future__ import annotations

import dataclasses
import email
import glob
import hashlib
import os
from pathlib import Path

import mailparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.parse import ParsedMail, header, parse_mail
from inbound.replies import extract_reply

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = sorted(DATA.glob("*.eml"))
CPYTHON_DATA = os.path.join(os.path.dirname(email.__file__), "..", "test", "test_email", "data")
CPYTHON_CORPUS = sorted(glob.glob(os.path.join(CPYTHON_DATA, "msg_*.txt")))

NEW_TEXT = {
    "en": "I tried the new link and the download works now.\nThank you for the quick help!",
    "fr": "J'ai essayé le nouveau lien et le téléchargement fonctionne.\n"
    "Merci pour votre aide rapide !",
    "de": "Ich habe den neuen Link probiert und der Download funktioniert jetzt.\n"
    "Vielen Dank für die schnelle Hilfe!",
    "pt": "Experimentei o novo link e o download já funciona.\nObrigado pela ajuda rápida!",
}
HISTORY_WORDS = {"en": "please try", "fr": "merci d'essayer", "de": "bitte probieren",
                 "pt": "por favor experimente"}


def load(name: str, **kwargs: int) -> tuple[bytes, ParsedMail]:
    raw = (DATA / name).read_bytes()
    return raw, parse_mail(raw, **kwargs)


def test_corpus_is_complete() -> None:
    names = {path.name for path in CORPUS}
    for client in ("gmail", "outlook", "apple", "thunderbird"):
        for lang in NEW_TEXT:
            assert f"{client}_{lang}.eml" in names
    assert len(names) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_mail_parses(path: Path) -> None:
    raw = path.read_bytes()
    parsed = parse_mail(raw)
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    assert parsed.text.strip()
    assert "\x00" not in parsed.text
    assert "\r" not in parsed.text
    for values in parsed.headers.values():
        assert all("\r" not in v and "\n" not in v for v in values)


@pytest.mark.parametrize("lang", sorted(NEW_TEXT))
@pytest.mark.parametrize("client", ["gmail", "outlook", "apple", "thunderbird"])
def test_reply_text_of_each_client_and_language(client: str, lang: str) -> None:
    _, parsed = load(f"{client}_{lang}.eml")
    assert HISTORY_WORDS[lang] in parsed.text.lower()  # the full text keeps the history
    assert extract_reply(parsed.text) == NEW_TEXT[lang]


def test_gmail_headers() -> None:
    _, parsed = load("gmail_fr.eml")
    assert parsed.message_id == "gmail-fr@client.example"
    assert parsed.from_addr == "amelie@exemple.fr"
    assert parsed.from_name == "Amélie Dupont"
    assert parsed.to == ["support@tickets.example.com"]
    assert parsed.subject == "Re: [Ticket #1042] download"
    assert parsed.in_reply_to == ["out-1042-1@tickets.example.com"]
    assert parsed.references == ["out-1042-0@tickets.example.com", "out-1042-1@tickets.example.com"]
    assert parsed.auth_results == [
        "mx.tickets.example.com; dkim=pass header.d=example.com;"
        " dmarc=pass header.from=example.com",
        "evil.example; dmarc=pass",
    ]
    assert parsed.received_count == 2
    assert header(parsed, "Message-ID") == "<gmail-fr@client.example>"
    assert header(parsed, "x-not-there") is None
    assert parsed.html is not None and "blockquote" in parsed.html
    assert not parsed.is_delivery_report and parsed.attachments == []


def test_html_only_mail_becomes_text_and_safe_html() -> None:
    _, parsed = load("html_only_fr.eml")
    # no Markdown left: bold is its words
    assert "le fichier est corrompu" in parsed.text and "*" not in parsed.text
    assert "<p" not in parsed.text and "<b>" not in parsed.text
    assert "alert" not in parsed.text
    assert parsed.html is not None
    for unsafe in ("<script", "onclick", "javascript:", "alert("):
        assert unsafe not in parsed.html
    assert extract_reply(parsed.text) == "Bonjour,\nle fichier est corrompu.\n\nlien"


def test_html_only_outlook_keeps_bold_header_block_out() -> None:
    _, parsed = load("outlook_de.eml")
    assert "Von:" in parsed.text and "**" not in parsed.text
    assert "p.MsoNormal" not in parsed.text  # style sheets are not text


def test_attachment_names_are_sanitised() -> None:
    _, parsed = load("attachment_en.eml")
    assert parsed.text.strip() == "The invoice is attached."
    names = [a.filename for a in parsed.attachments]
    assert names == ["résuméfdp.exe", "attachment-2.bin", "shot.png"]
    for name in names:
        assert "/" not in name and "\\" not in name and "\u202e" not in name
        assert all(ch.isprintable() for ch in name)
    pdf = parsed.attachments[0]
    assert pdf.content_type == "application/pdf"
    assert pdf.data is not None and pdf.data.startswith(b"%PDF-1.4\n") and pdf.size == len(pdf.data)
    assert parsed.attachments[1].data == b"\x00\x01\x02"


def test_attachment_over_the_limit_keeps_size_not_data() -> None:
    _, small_limit = load("huge_attachment_en.eml", max_attachment_bytes=10_000)
    (zipped,) = small_limit.attachments
    assert (zipped.filename, zipped.size, zipped.data, zipped.too_large) == (
        "logs.zip", 65536, None, True)
    _, default = load("huge_attachment_en.eml")
    assert default.attachments[0].data is not None and not default.attachments[0].too_large


def test_default_limit_is_ten_megabytes() -> None:
    import base64

    def mail(size: int) -> bytes:
        body = base64.encodebytes(b"x" * size)
        return (b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                b"Content-Type: text/plain\n\nsee file\n--b\nContent-Type: application/zip\n"
                b"Content-Disposition: attachment; filename=big.zip\n"
                b"Content-Transfer-Encoding: base64\n\n" + body + b"--b--\n")

    over = parse_mail(mail(10_485_761)).attachments[0]
    assert over.too_large and over.data is None and over.size == 10_485_761
    at_limit = parse_mail(mail(10_485_760)).attachments[0]
    assert not at_limit.too_large and at_limit.data is not None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("charset_iso2022jp_undeclared.eml", "お世話になっております。ダウンロードできません。"),
        ("charset_cp1252_as_latin1.eml", "I paid €49 – “not received”, café."),
        ("charset_cp1252_undeclared.eml", "Le reçu coûte 12€ – merci"),
        ("charset_gb18030.eml", "我无法下载文件，请帮忙。𠀀"),
        ("unknown_charset.eml", "Grüße aus Köln"),
    ],
)
def test_strange_charsets_give_readable_text(name: str, expected: str) -> None:
    _, parsed = load(name)
    assert parsed.text.strip() == expected


@pytest.mark.parametrize(
    ("name", "readable", "defect"),
    [
        ("broken_utf8.eml", "Olá, não consigo", "invalid"),
        ("broken_base64.eml", "Bitte helfen Sie", "Base64"),
        ("broken_qp.eml", "Café =ZZ broken soft", "invalid"),
    ],
)
def test_broken_encodings_give_text_and_a_defect(name: str, readable: str, defect: str) -> None:
    _, parsed = load(name)
    assert parsed.text.startswith(readable)
    assert any(defect in d for d in parsed.defects), parsed.defects


def test_delivery_status_bounce() -> None:
    _, parsed = load("bounce_delivery_status.eml")
    assert parsed.is_delivery_report
    assert parsed.bounced_recipients == ["gone.user@example.org", "second@example.net"]
    assert parsed.failed_for_good == parsed.bounced_recipients  # 5.1.1 and 5.2.2
    assert parsed.from_addr == "mailer-daemon@mx.example.org"
    assert parsed.returned_message_ids == []  # its returned headers carry none


def test_a_report_names_the_message_id_of_the_mail_it_returns() -> None:
    raw = (DATA / "bounce_delivery_status.eml").read_bytes().replace(
        b"Subject: [Ticket #1042] opened",
        b"Subject: [Ticket #1042] opened\nMessage-ID:  <q3kzv7@tickets.example.com> (ours)")
    assert parse_mail(raw).returned_message_ids == ["<q3kzv7@tickets.example.com>"]
    inside = raw.replace(b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822")
    assert parse_mail(inside).returned_message_ids == ["<q3kzv7@tickets.example.com>"]
    # the same part outside a delivery report is nobody's business
    other = raw.replace(b"report-type=delivery-status", b"report-type=disposition-notification")
    assert parse_mail(other).returned_message_ids == []


def test_a_report_that_is_not_delivery_status_is_not_a_bounce() -> None:
    raw = (DATA / "bounce_delivery_status.eml").read_bytes().replace(
        b"report-type=delivery-status", b"report-type=disposition-notification")
    assert not parse_mail(raw).is_delivery_report


def test_encoded_crlf_in_subject_cannot_inject_headers() -> None:
    _, parsed = load("subject_injection.eml")
    assert parsed.subject == "hi  Bcc: evil@x"
    assert header(parsed, "subject") == parsed.subject
    assert "bcc" not in parsed.headers


def test_control_characters_in_headers_become_spaces() -> None:
    raw = (b"From: =?utf-8?q?Eve=0D=0AX-Evil=3A_1?= <EVE@Example.COM>\n"
           b"Subject: =?utf-8?b?YQBiB2M=?=\nMessage-ID:  <  id@x >\n\nbody\n")
    parsed = parse_mail(raw)
    assert parsed.from_name == "Eve  X-Evil: 1"
    assert parsed.from_addr == "eve@example.com"
    assert parsed.subject == "ab c"  # NUL dropped, BEL made a space
    assert parsed.message_id == "id@x"


def test_raw_utf8_headers_are_decoded() -> None:
    parsed = parse_mail("From: José <jose@exemplo.pt>\nSubject: Reembolso não recebido\n\nx\n"
                        .encode())
    assert parsed.subject == "Reembolso não recebido"
    assert parsed.from_name == "José"


def test_missing_headers() -> None:
    parsed = parse_mail(b"just a body\n")
    assert (parsed.message_id, parsed.from_addr, parsed.subject, parsed.to) == (None, "", "", [])
    assert parsed.received_count == 0


def test_crlf_and_lf_mail_give_the_same_text() -> None:
    raw = (DATA / "thunderbird_de.eml").read_bytes()
    crlf = raw.replace(b"\n", b"\r\n")
    assert parse_mail(crlf).text == parse_mail(raw).text


def test_parsed_mail_is_frozen() -> None:
    _, parsed = load("gmail_en.eml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.subject = "x"  # type: ignore[misc]


def test_stdlib_reads_the_mail_when_mail_parser_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes) -> None:
        raise RuntimeError("mail-parser fault")

    monkeypatch.setattr(mailparser, "parse_from_bytes", broken)
    raw, expected = load("gmail_pt.eml")
    parsed = parse_mail(raw)
    assert "mail-parser failed: RuntimeError" in parsed.defects
    assert (parsed.from_addr, parsed.from_name, parsed.text, parsed.html) == (
        expected.from_addr, expected.from_name, expected.text, expected.html)


def test_deep_nesting_is_a_defect_not_a_crash() -> None:
    depth = 3000
    raw = b"From: a@example.com\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth)
    ) + b"Content-Type: text/plain\n\ndeep\n"
    parsed = parse_mail(raw)
    assert parsed.from_addr == "a@example.com"
    assert any("RecursionError" in d for d in parsed.defects)


def test_nesting_past_our_limit_is_cut_with_a_defect() -> None:
    raw = b"From: a@example.com\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(60)
    ) + b"Content-Type: text/plain\n\ndeep\n"
    parsed = parse_mail(raw)
    assert parsed.text == ""
    assert "MIME nesting deeper than 40 parts ignored" in parsed.defects


@pytest.mark.skipif(not CPYTHON_CORPUS, reason=f"no CPython email test corpus in {CPYTHON_DATA}")
@pytest.mark.parametrize("path", CPYTHON_CORPUS, ids=os.path.basename)
def test_cpython_email_corpus(path: str) -> None:
    raw = Path(path).read_bytes()
    parsed = parse_mail(raw)
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    assert isinstance(parsed.text, str) and "\x00" not in parsed.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    assert isinstance(parsed.text, str) and isinstance(parsed.defects, list)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CORPUS), st.data())
def test_damaged_corpus_mails_never_raise(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 64))
        raw[at:at + cut] = data.draw(st.binary(max_size=16))
    parsed = parse_mail(bytes(raw))
    assert parsed.sha256 == hashlib.sha256(bytes(raw)).hexdigest()
    extract_reply(parsed.text)
