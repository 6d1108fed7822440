"""One language per mail: every mail, in French, German and Portuguese, has no English left.

Every event, audience and notice kind is rendered for every ticket type in fr, de and pt with
a context whose own words (comments, names, titles) are not English, so whatever English is
found came from us: a template, a label, a subject or a refusal. The refusal of a notice is a
catalogue sentence (a Text, as the services store it), said in the reader's language.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain.texts import _
from outbound.render import ACCOUNT_EVENTS, AUDIENCES, Renderer
from tests.outbound import TICKET_TYPES, account_ctx, every_mail, make_comment, make_ctx
from tests.support.english import english_words, visible_text

OTHER_LOCALES = ("fr", "de", "pt")
# Names and codes a mail may carry whatever its language.
NAMES = frozenset({"acme", "Zorblax", "Ann"})


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def neutral(ctx: dict[str, Any]) -> dict[str, Any]:
    """`ctx` with the people's own words replaced by words of no language."""
    history = [make_comment(i, text=f"Zorblax {i}") for i in range(3)]
    order = ctx["order"]
    if order is not None:
        order = {**order, "title": "Zorblax"}
    refused = _("this ticket is closed; %(hint)s", hint=_("staff can reopen it")).to_json()
    ticket = ctx["ticket"]
    if ticket is not None:
        ticket = {**ticket, "title": "Zorblax"}
    return {**ctx, "history": history, "newest": history[-1], "order": order, "ticket": ticket,
            "staff_explanation": "Zorblax" if ctx.get("staff_explanation") else None,
            "refused": refused if ctx.get("refused") else None}


def english_in(out: Any, locale: str) -> list[str]:
    return english_words(" ".join((out.subject, out.text, visible_text(out.html))), locale,
                         allowed=NAMES)


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_no_mail_about_a_ticket_or_order_has_english_left(renderer: Renderer,
                                                           locale: str) -> None:
    found: dict[str, list[str]] = {}
    for event, audience, kind in every_mail():
        for ticket_type in TICKET_TYPES:
            links = {"dispute": "https://tickets.example/a/dispute/TOKEN",
                     "to_refund": "https://tickets.example/a/to-refund/TOKEN",
                     "confirm": "https://tickets.example/a/confirm/TOKEN",
                     "receipt": "https://tickets.example/r/TOKEN",
                     "download": "https://tickets.example/r/TOKEN/download"}
            ctx = neutral(make_ctx(event, ticket_type=ticket_type, notice_kind=kind, **links))
            if event == "disputed":
                ctx["account"] = {"vendor": "acme", "disputes": 1, "limit": 2,
                                  "revoked": False, "note": None}
            words = english_in(renderer.render(event, audience, locale, ctx), locale)
            if words:
                found[f"{event}/{audience}/{kind}/{ticket_type}"] = words
    assert not found, found


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_no_mail_about_a_vendors_account_has_english_left(renderer: Renderer,
                                                          locale: str) -> None:
    found = {}
    for event in ACCOUNT_EVENTS:
        for audience in AUDIENCES[event]:
            ctx = account_ctx(event, signin="https://tickets.example/signin/TOKEN",
                              workplace="https://tickets.example/w/standing")
            words = english_in(renderer.render(event, audience, locale, ctx), locale)
            if words:
                found[f"{event}/{audience}"] = words
    assert not found, found


def test_a_refusal_is_said_in_the_readers_language(renderer: Renderer) -> None:
    ctx = neutral(make_ctx("notice", notice_kind="vendor_reply_closed"))
    pt = renderer.render("notice", "vendor", "pt", ctx).text
    assert "Este tíquete está encerrado; a equipe pode reabri-lo." in " ".join(pt.split())
    de = " ".join(renderer.render("notice", "vendor", "de", ctx).text.split())
    assert "Dieses Ticket ist geschlossen; der Kundenservice kann es wieder öffnen." in de
    en = renderer.render("notice", "vendor", "en", ctx).text
    assert "This ticket is closed; staff can reopen it." in " ".join(en.split())
    # a notice written before refusals were catalogue sentences shows its text as it was
    old = renderer.render("notice", "vendor", "pt", {**ctx, "refused": "as written"}).text
    assert "As written." in old


def test_german_mail_says_anbieter(renderer: Renderer) -> None:
    out = renderer.render("opened", "customer", "de", neutral(make_ctx("opened")))
    assert "Anbieter: acme" in out.text and "Vendor" not in out.text + out.html
