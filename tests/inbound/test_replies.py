"""extract_reply: quoted history and signatures go, inline answers and #commands stay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbound.replies import extract_reply

NEW = "The download works now, thanks."
HISTORY = "> Hello,\n> please try the new link.\n>\n> Support"


@pytest.mark.parametrize(
    "attribution",
    [
        # Gmail, one line and wrapped
        "On Mon, Nov 20, 2026 at 10:00 AM Support <support@example.com> wrote:",
        "On Mon, Nov 20, 2026 at 10:00 AM Support <support@example.com>\nwrote:",
        "Le lun. 20 nov. 2026 à 10:00, Support <support@example.com> a écrit :",
        "Le lun. 20 nov. 2026 à 10:00, Support <support@example.com> a écrit\u202f:",
        "Le lun. 20 nov. 2026 à 10:00, Support <support@example.com> a\nécrit :",
        "Am Mo., 20. Nov. 2026 um 10:00 Uhr schrieb Support <support@example.com>:",
        "Am Mo., 20. Nov. 2026 um 10:00 Uhr schrieb Support <\nsupport@example.com>:",
        "Em seg., 20 de nov. de 2026 às 10:00, Support <support@example.com> escreveu:",
        "Em seg., 20 de nov. de 2026 às 10:00, Support <support@example.com>\nescreveu:",
        # Apple Mail
        "On Nov 20, 2026, at 10:00, Support <support@example.com> wrote:",
        "Le 20 nov. 2026 à 10:00, Support <support@example.com> a écrit :",
        "Am 20.11.2026 um 10:00 schrieb Support <support@example.com>:",
        "Em 20 de nov. de 2026, à(s) 10:00, Support <support@example.com> escreveu:",
        # Thunderbird
        "On 11/20/26 10:00, Support wrote:",
        "Le 20/11/2026 à 10:00, Support a écrit :",
        "Am 20.11.26 um 10:00 schrieb Support:",
        "Em 20/11/2026 10:00, Support escreveu:",
    ],
)
def test_attribution_and_quote_are_cut(attribution: str) -> None:
    assert extract_reply(f"{NEW}\n\n{attribution}\n{HISTORY}\n") == NEW


@pytest.mark.parametrize(
    "attribution",
    ["On Mon, Nov 20, 2026 at 10:00 AM Support wrote:", "Em 20/11/2026 10:00, Support escreveu:",
     "Le 20/11/2026 à 10:00, Support a écrit :", "Am 20.11.26 um 10:00 schrieb Support:"],
)
def test_attribution_without_quote_marks_still_cuts(attribution: str) -> None:
    # html2text output of a mail whose quote lost its blockquote
    assert extract_reply(f"{NEW}\n\n{attribution}\nHello,\nplease try again.\n") == NEW


@pytest.mark.parametrize(
    "block",
    [
        "________________________________\nFrom: Support <s@example.com>\n"
        "Sent: Monday, November 20, 2026 10:00 AM\nTo: John\nSubject: RE: x",
        "-----Original Message-----\nFrom: Support\nSent: Monday\nTo: John\nSubject: RE: x",
        "From: Support <s@example.com>\nDate: Monday, 20 November 2026 at 10:00\nTo: John",
        "**From:** Support <s@example.com>  \n**Sent:** Monday, November 20, 2026  \n**To:** John",
        "De\u00a0: Support\nEnvoyé\u00a0: lundi 20 novembre 2026 10:00\nÀ\u00a0: Jean\n"
        "Objet\u00a0: RE: x",
        "-----Message d'origine-----\nDe : Support\nEnvoyé : lundi\nÀ : Jean",
        "De : Support <s@example.com>\nDate : lundi 20 novembre 2026 à 10:00\nÀ : Jean",
        "Von: Support <s@example.com>\nGesendet: Montag, 20. November 2026 10:00\nAn: Jörg",
        "-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Montag\nAn: Jörg",
        "Von: Support\nDatum: Montag, 20. November 2026 um 10:00\nAn: Jörg",
        "De: Support <s@example.com>\nEnviado: segunda-feira, 20 de novembro de 2026 10:00\n"
        "Para: João\nAssunto: RE: x",
        "De: Support <s@example.com>\nEnviada em: segunda-feira, 20 de novembro de 2026 10:00\n"
        "Para: João\nAssunto: RE: x",
        "-----Mensagem original-----\nDe: Support\nData: segunda-feira\nPara: João",
        "________________________________",
    ],
)
def test_outlook_history_is_cut(block: str) -> None:
    assert extract_reply(f"{NEW}\n\n{block}\n\nHello,\nplease try the new link.\n") == NEW


@pytest.mark.parametrize(
    "signoff",
    ["-- \nJohn Doe\nACME", "--\nJohn", "Sent from my iPhone", "Sent from my Galaxy",
     "Get Outlook for iOS", "Envoyé de mon iPhone", "Envoyé depuis mon mobile",
     "Von meinem iPhone gesendet", "Gesendet von meinem Smartphone", "Enviado do meu iPhone",
     "Enviado de meu iPad", "Enviado do Outlook para Android"],
)
def test_signatures_are_cut(signoff: str) -> None:
    assert extract_reply(f"{NEW}\n\n{signoff}\n") == NEW
    quoted = f"{NEW}\n\n{signoff}\n\nOn 11/20/26 10:00, Support wrote:\n{HISTORY}"
    assert extract_reply(quoted) == NEW


def test_a_sentence_starting_like_a_signoff_is_kept() -> None:
    text = ("Sent from my work laptop the installer fails with error 0x80070005 every single "
            "time I try it, even as administrator.")
    assert extract_reply(text) == text


def test_double_dash_inside_a_line_is_not_a_signature() -> None:
    assert extract_reply("Use the --force flag -- it helps.\nBye") == (
        "Use the --force flag -- it helps.\nBye")


def test_inline_answers_keep_questions_and_answers() -> None:
    text = (
        "On 11/20/26 10:00, Support wrote:\n"
        "> Which operating system do you use?\n"
        "Linux, Debian 12.\n"
        "> And which version of the app?\n"
        "Version 3.2.1.\n"
        "\n-- \nJohn\n\n"
        "> Regards,\n> Support\n>\n> On 11/19/26, John wrote:\n>> old\n"
    )
    assert extract_reply(text) == (
        "On 11/20/26 10:00, Support wrote:\n"
        "> Which operating system do you use?\n"
        "Linux, Debian 12.\n"
        "> And which version of the app?\n"
        "Version 3.2.1."
    )


def test_bottom_posted_answer_keeps_the_question() -> None:
    text = "Le 20/11/2026 à 10:00, Support a écrit :\n> Quel navigateur ?\n\nFirefox 140.\n"
    assert extract_reply(text) == text.strip()


def test_commands_at_the_top_are_kept() -> None:
    text = f"#close\n#partial 12.50\n\nOn 11/20/26 10:00, Support wrote:\n{HISTORY}\n"
    assert extract_reply(text) == "#close\n#partial 12.50"
    text = f"\n#escalate wrong file\n{NEW}\n\nSent from my iPhone\n"
    assert extract_reply(text) == f"#escalate wrong file\n{NEW}"


@pytest.mark.parametrize("attribution", [
    "On Mon, Nov 20, 2026 at 10:00 AM Support <support@example.com> wrote:",
    "Le lun. 20 nov. 2026 à 10:00, Support <support@example.com> a écrit :",
    "Am Mo., 20. Nov. 2026 um 10:00 Uhr schrieb Support <support@example.com>:",
    "Em seg., 20 de nov. de 2026 às 10:00, Support <support@example.com> escreveu:",
    "Em seg., 20 de nov. de 2026 às 10:00, Support <support@example.com>\nescreveu:",
])
def test_a_reply_that_is_only_a_quote_has_no_new_text(attribution: str) -> None:
    # a client's "reply" pressed and sent at once: nothing of it is the sender's own
    assert extract_reply(f"\n{attribution}\n{HISTORY}\n") == ""
    assert extract_reply(f"{attribution}\n{HISTORY}\n\n-- \nAnn\n") == ""
    assert extract_reply(f"{HISTORY}\n") == ""


def test_text_without_a_quote_is_never_emptied() -> None:
    assert extract_reply("-- \nJohn") == "-- \nJohn"
    assert extract_reply("   \n") == ""
    forwarded = "From: Support <s@example.com>\nSent: Monday\nTo: John\n\nHello"
    assert extract_reply(forwarded) == forwarded


def test_forwarded_message_is_content_not_history() -> None:
    text = (f"{NEW}\n\n---------- Forwarded message ---------\nFrom: Shop <shop@example.com>\n"
            "Date: Mon, Nov 20, 2026\nSubject: Your receipt ABCD1234\n\nReceipt ABCD1234")
    assert extract_reply(text) == text


def test_quoted_outlook_block_does_not_cut_the_answers_below_it() -> None:
    text = ("> From: Support\n> Sent: Monday\n> Which version?\n3.2.1\n")
    assert extract_reply(text) == text.strip()


def test_crlf_text() -> None:
    text = f"{NEW}\r\n\r\nOn 11/20/26 10:00, Support wrote:\r\n> old\r\n"
    assert extract_reply(text) == NEW


def test_a_long_line_is_quick_enough_to_finish() -> None:
    line = "On " + "x " * 200_000 + "wrote:"
    assert extract_reply(f"{NEW}\n{line}\n> q\n") == NEW + "\n" + line


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "", "hello", "#close", "> quoted", ">> deeper", "-- ", "Sent from my iPhone",
    "On 11/20/26 10:00, Support wrote:", "From: a", "Sent: b", "De: c", "Enviada em: d",
    "________________________________", "Em 20/11/2026 10:00, X escreveu:", "x" * 400,
]) | st.text(max_size=40), max_size=25))
def test_extract_reply_keeps_a_prefix_of_the_text(lines: list[str]) -> None:
    text = "\n".join(lines)
    result = extract_reply(text)
    normalised = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n")
                           .replace("\r", "\n").split("\n")).strip()
    assert result == text.strip() or normalised.startswith(result)
    # only a quote ('>' lines) may come out empty
    assert bool(result) == bool(text.strip()) or ">" in text
