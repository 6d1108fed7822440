"""Rendering: every mail in every locale, fixed subjects, escaping, links, times, and speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton, format_time, get_datetime_format

from gateway.domain.labels import LABELS
from gateway.domain.locales import LOCALES
from gateway.services import i18n
from outbound.render import ACCOUNT_EVENTS, AUDIENCES, Renderer, wrap_text
from outbound.wording import SUBJECTS, subject_for
from tests.outbound import (
    T0,
    TICKET_TYPES,
    account_ctx,
    every_mail,
    make_comment,
    make_ctx,
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("event", "audience", "kind"), every_mail())
def test_every_mail_renders_in_every_locale(
    renderer: Renderer, event: str, audience: str, kind: str | None, locale: str
) -> None:
    for ticket_type in TICKET_TYPES if event not in ("receipt", "sale") else ("refund",):
        ctx = make_ctx(event, ticket_type=ticket_type, notice_kind=kind)
        out = renderer.render(event, audience, locale, ctx)
        assert out.subject and "\n" not in out.subject
        assert out.text.strip() and out.html.startswith("<!DOCTYPE html>")
        assert "ABCD1234" in out.text and "ABCD1234" in out.html
        if ctx["ticket"] is not None:
            assert "#1042" in out.text and "#1042" in out.html
            assert "[Ticket #1042]" in out.subject
            assert ctx["links"]["ticket"] in out.text
        # every comment of the history is at the bottom of both parts
        assert out.text.count("Comment 2:") == 2  # newest on top, and in the history
        assert "Comment 0:" in out.html
        assert "{{" not in out.text and "{%" not in out.html


# The fixed subjects, locale by locale (docs/emails.md). Vendors filter on these: a change
# here is a change of the outside contract.
GOLDEN = {
    "en": [
        "Ticket Opened - Refund Request [Ticket #1042]",
        "Ticket Reply - Cancellation Request [Ticket #1042]",
        "Ticket Changed - Tech Support Request [Ticket #1042]",
        "Ticket Closed - Refund Request [Ticket #1042]",
        "Ticket Inactivity Warning - Tech Support Request [Ticket #1042]",
        "Refund Processed [Ticket #1042]",
        "Cancellation Processed [Ticket #1042]",
        "Ticket Escalated - Refund Request [Ticket #1042]",
        "Ticket Notice [Ticket #1042]",
        "Request Not Processed",
        "Your Order Receipt ABCD1234",
        "Sale Notification ABCD1234",
        "Ticket Disputed [Ticket #1042]",
        "Right to Respond Revoked",
        "Your Sign-in Link",
    ],
    "fr": [
        "Ticket ouvert - Demande de remboursement [Ticket #1042]",
        "Réponse au ticket - Demande d'annulation [Ticket #1042]",
        "Ticket modifié - Demande de support technique [Ticket #1042]",
        "Ticket fermé - Demande de remboursement [Ticket #1042]",
        "Avertissement pour non-traitement du ticket - Demande de support technique [Ticket #1042]",
        "Remboursement traité [Ticket #1042]",
        "Annulation traitée [Ticket #1042]",
        "Ticket escaladé - Demande de remboursement [Ticket #1042]",
        "Avis concernant le ticket [Ticket #1042]",
        "Demande non traitée",
        "Reçu de votre commande ABCD1234",
        "Notification de vente ABCD1234",
        "Ticket contesté [Ticket #1042]",
        "Droit de réponse révoqué",
        "Votre lien de connexion",
    ],
    "de": [
        "Ticket eröffnet - Rückerstattungsantrag [Ticket #1042]",
        "Ticket-Antwort - Stornierungsantrag [Ticket #1042]",
        "Ticket geändert - Antrag auf technische Unterstützung [Ticket #1042]",
        "Ticket geschlossen - Rückerstattungsantrag [Ticket #1042]",
        "Ticket-Inaktivitätswarnung - Antrag auf technische Unterstützung [Ticket #1042]",
        "Rückerstattung durchgeführt [Ticket #1042]",
        "Stornierung durchgeführt [Ticket #1042]",
        "Ticket eskaliert - Rückerstattungsantrag [Ticket #1042]",
        "Ticket-Hinweis [Ticket #1042]",
        "Anfrage nicht bearbeitet",
        "Ihre Bestellrechnung ABCD1234",
        "Verkaufsbenachrichtigung ABCD1234",
        "Ticket angefochten [Ticket #1042]",
        "Antwortrecht entzogen",
        "Ihr Anmeldelink",
    ],
    "pt": [
        "Tíquete aberto - Solicitação de reembolso [Ticket #1042]",
        "Resposta ao tíquete - Solicitação de cancelamento [Ticket #1042]",
        "Tíquete alterado - Solicitação de suporte técnico [Ticket #1042]",
        "Tíquete encerrado - Solicitação de reembolso [Ticket #1042]",
        "Advertência de inatividade de tíquete - Solicitação de suporte técnico [Ticket #1042]",
        "Reembolso processado [Ticket #1042]",
        "Cancelamento processado [Ticket #1042]",
        "Tíquete escalado - Solicitação de reembolso [Ticket #1042]",
        "Aviso sobre o tíquete [Ticket #1042]",
        "Solicitação não processada",
        "Recibo do seu pedido ABCD1234",
        "Notificação de venda ABCD1234",
        "Tíquete contestado [Ticket #1042]",
        "Direito de resposta revogado",
        "Seu link de acesso",
    ],
}
GOLDEN_CASES = [
    ("opened", "refund", True),
    ("reply", "cancellation", True),
    ("changed", "tech_support", True),
    ("closed", "refund", True),
    ("inactivity_warning", "tech_support", True),
    ("processed", "refund", True),
    ("processed", "cancellation", True),
    ("escalated", "refund", True),
    ("notice", "refund", True),
    ("notice", None, False),
    ("receipt", None, False),
    ("sale", None, False),
    ("disputed", "refund", True),
    ("revoked", None, False),
    ("signin", None, False),
]


@pytest.mark.parametrize("locale", LOCALES)
def test_golden_subjects(renderer: Renderer, locale: str) -> None:
    got = [
        subject_for(
            event,
            locale,
            ticket_number=1042 if has_ticket else None,
            ticket_type=ticket_type,
            receipt="ABCD1234",
        )
        for event, ticket_type, has_ticket in GOLDEN_CASES
    ]
    assert got == GOLDEN[locale]


@pytest.mark.parametrize("locale", LOCALES)
def test_rendered_subject_is_the_fixed_one(renderer: Renderer, locale: str) -> None:
    for (event, ticket_type, has_ticket), want in zip(GOLDEN_CASES, GOLDEN[locale], strict=True):
        audience = AUDIENCES[event][0]
        ctx = make_ctx(event, ticket_type=ticket_type or "refund", with_ticket=has_ticket)
        if event in ACCOUNT_EVENTS:
            ctx = account_ctx()
        assert renderer.render(event, audience, locale, ctx).subject == want


def test_every_subject_keeps_the_ticket_token_literal() -> None:
    for locale in LOCALES:
        for key, msgid in SUBJECTS.items():
            pattern = i18n.gettext(msgid, locale=locale)
            has_token = "[Ticket #%(n)s]" in pattern
            assert has_token == (key not in ("notice.no_ticket", "receipt", "sale", "revoked",
                                             "signin")), (locale, key)


def test_every_locale_labels_every_code() -> None:
    en = LABELS
    assert set(en["refund_reason"]) == {
        "not_received",
        "not_as_described",
        "technical_issue",
        "not_satisfied",
        "unauthorized",
        "duplicate",
        "not_downloaded",  # the addons profile's
        "malfunction",
        "other",
    }
    assert set(en["cancellation_reason"]) == {
        "too_expensive",
        "not_using",
        "technical_issue",
        "other",
    }
    assert set(en["problem"]) == {
        "cannot_download",
        "cannot_login",
        "not_received",
        "not_working",
        "other",
    }
    for locale in LOCALES:
        for group, codes in en.items():
            for code, english in codes.items():
                said = i18n.label(group, code, locale)
                assert said, (locale, group, code)
                # "System" is the same word in German; every other label has its own
                assert locale == "en" or said != english or english == "System", (locale, code)


def test_text_and_html_templates_say_the_same_thing() -> None:
    folder = resources.files("templates") / "email"
    names = sorted(p.name for p in folder.iterdir()
                   if p.name.endswith(".txt.j2") and not p.name.startswith("_"))
    assert len(names) >= len(AUDIENCES)
    for name in names:
        text = (folder / name).read_text("utf-8").splitlines()
        html = (folder / name.replace(".txt.j2", ".html.j2")).read_text("utf-8").splitlines()
        assert text[0] == '{% extends "_layout.txt.j2" %}'
        assert html[0] == '{% extends "_layout.html.j2" %}'
        assert text[1:] == html[1:], name


def test_templates_are_chosen_by_event_and_audience(renderer: Renderer) -> None:
    # one template per event and audience for every locale: the words come from the catalogue
    assert renderer.template_names("opened", "customer", "fr") == (
        "opened.customer.txt.j2",
        "opened.customer.html.j2",
    )
    assert renderer.template_names("reply", "vendor", "de") == (
        "reply.txt.j2",
        "reply.html.j2",
    )
    assert renderer.template_names("escalated", "staff", "pt")[0] == "escalated.staff.txt.j2"


def test_unknown_locale_falls_back_to_english(renderer: Renderer) -> None:
    ctx = make_ctx("reply")
    assert renderer.render("reply", "vendor", "xx", ctx).subject.startswith("Ticket Reply")
    assert renderer.render("reply", "vendor", "fr_CA", ctx).subject.startswith("Réponse")
    only_en = Renderer(locales=("en",))
    assert only_en.render("reply", "vendor", "de", ctx).subject.startswith("Ticket Reply")


def test_unknown_event_or_audience_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError):
        renderer.render("sale", "customer", "en", make_ctx("sale"))
    with pytest.raises(ValueError):
        renderer.render("party", "customer", "en", make_ctx())


def test_comment_html_is_escaped(renderer: Renderer) -> None:
    ctx = make_ctx("reply")
    evil = "<script>alert('x')</script> & <b>bold</b>"
    ctx["newest"] = make_comment(5, text=evil)
    ctx["history"] = [*ctx["history"], ctx["newest"]]
    ctx["order"]["customer_name"] = "<img src=x onerror=alert(1)>"
    out = renderer.render("reply", "vendor", "en", ctx)
    assert "<script>" not in out.html and "<img" not in out.html and "<b>bold" not in out.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;" in out.html
    assert evil in out.text  # the text part shows what was written


def test_sale_mail_to_the_vendor_links_nothing_of_the_customer(renderer: Renderer) -> None:
    receipt_url = "https://tickets.example/r/CUSTOMER-SECRET"
    download_url = "https://tickets.example/d/CUSTOMER-SECRET"
    for locale in LOCALES:
        sale = renderer.render(
            "sale", "vendor", locale, make_ctx("sale", receipt=receipt_url, download=download_url)
        )
        assert "CUSTOMER-SECRET" not in sale.text + sale.html
        receipt = renderer.render(
            "receipt",
            "customer",
            locale,
            make_ctx("receipt", receipt=receipt_url, download=download_url),
        )
        assert receipt_url in receipt.text and download_url in receipt.text
        assert f'href="{receipt_url}"' in receipt.html


def babel_says(at: datetime, locale: str, zone: str) -> str:
    """An instant as Babel writes it for `locale` in `zone` (CLDR's words, order and clock),
    built here from Babel itself, not from the code under test."""
    tz = ZoneInfo(zone)
    day = format_skeleton("yMMMEd", at, tzinfo=tz, locale=locale)
    hour = format_time(at, "short", tzinfo=tz, locale=locale)
    joined = str(get_datetime_format("medium", locale=locale)).replace("'", "")
    return joined.format(hour, day).replace("\u202f", " ") + f" ({zone})"


@pytest.mark.parametrize("locale", LOCALES)
def test_times_are_babels_in_the_readers_locale_and_the_vendors_zone(
        renderer: Renderer, locale: str) -> None:
    out = renderer.render("opened", "customer", locale, make_ctx("opened", zone="Europe/Berlin"))
    opened = babel_says(T0, locale, "Europe/Berlin")
    assert opened in out.text and opened in out.html
    assert "09:00" not in out.text  # the UTC wall time is not shown
    ny = renderer.render("opened", "vendor", locale, make_ctx("opened", zone="America/New_York"))
    assert babel_says(T0, locale, "America/New_York") in ny.text
    summer = make_ctx("opened", zone="Europe/Berlin")
    summer["ticket"]["created_at"] = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    summer_text = renderer.render("opened", "vendor", locale, summer).text
    assert babel_says(summer["ticket"]["created_at"], locale, "Europe/Berlin") in summer_text


def test_mail_and_pages_write_an_instant_alike_in_each_language(renderer: Renderer) -> None:
    """What a reader sees: the weekday and month in their own words, as on the ticket page
    (`i18n.format_when`, the one formatter of both)."""
    ctx = make_ctx("opened", zone="Europe/Berlin")
    ctx["ticket"]["created_at"] = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    text = {loc: renderer.render("opened", "customer", loc, ctx).text for loc in LOCALES}
    assert "Di., 8. Dez. 2026, 10:00 (Europe/Berlin)" in text["de"]
    assert "ter., 8 de dez. de 2026 10:00 (Europe/Berlin)" in text["pt"]
    assert "mar. 8 déc. 2026, 10:00 (Europe/Berlin)" in text["fr"]
    assert "Tue, Dec 8, 2026, 10:00 AM (Europe/Berlin)" in text["en"]
    for loc in LOCALES:
        assert i18n.format_when(ctx["ticket"]["created_at"], loc, "Europe/Berlin") in text[loc]
    assert "2026-12-08" not in text["en"] and "08.12.2026" not in text["de"]


def test_naive_times_are_utc_and_an_unknown_zone_shows_utc(renderer: Renderer) -> None:
    ctx = make_ctx("opened", zone="Not/AZone")
    ctx["ticket"]["created_at"] = T0.replace(tzinfo=None)
    out = renderer.render("opened", "vendor", "en", ctx)
    assert "Thu, Mar 5, 2026, 9:00 AM (UTC)" in out.text


def test_inactivity_warning_offers_the_customer_a_refund(renderer: Renderer) -> None:
    url = "https://tickets.example/t/TOKEN/refund"
    ctx = make_ctx("inactivity_warning", ticket_type="tech_support", to_refund=url)
    for locale in LOCALES:
        customer = renderer.render("inactivity_warning", "customer", locale, ctx)
        assert url in customer.text and f'href="{url}"' in customer.html
        vendor = renderer.render("inactivity_warning", "vendor", locale, ctx)
        assert url not in vendor.text + vendor.html
    en = renderer.render("inactivity_warning", "customer", "en", ctx)
    assert "change this ticket into a refund request" in en.text


def test_closed_by_the_vendor_carries_the_dispute_link_to_the_customer(
    renderer: Renderer,
) -> None:
    url = "https://tickets.example/t/TOKEN/dispute"
    with_link = make_ctx("closed", dispute=url)
    customer = renderer.render("closed", "customer", "en", with_link)
    assert f"I did not agree: {url}" in customer.text
    assert f'href="{url}"' in customer.html
    assert url not in renderer.render("closed", "vendor", "en", with_link).text
    without = renderer.render("closed", "customer", "en", make_ctx("closed"))
    assert "I did not agree" not in without.text
    fr = renderer.render("closed", "customer", "fr", with_link)
    assert f"Je n'étais pas d'accord : {url}" in fr.text


def test_notices_say_what_happened(renderer: Renderer) -> None:
    confirm = "https://tickets.example/c/TOKEN"
    ctx = make_ctx("notice", notice_kind="confirm_request", confirm=confirm)
    out = renderer.render("notice", "customer", "en", ctx)
    assert "confirm it with the link below" in out.text and confirm in out.text
    ctx = make_ctx("notice", notice_kind="command_refused")
    refused = renderer.render("notice", "vendor", "en", ctx)
    assert "#refund: only the vendor may use it." in refused.text
    lost = make_ctx("notice", notice_kind="request_not_processed", with_ticket=False)
    lost["links"]["ticket"] = None
    out = renderer.render("notice", "customer", "pt", lost)
    assert out.subject == "Solicitação não processada"
    assert out.text.startswith("Não foi possível processar sua solicitação.")
    assert "Detalhes do tíquete" not in out.text


def test_sections_come_in_the_documented_order(renderer: Renderer) -> None:
    ctx = make_ctx("reply")
    ctx["newest"] = make_comment(9, text="NEWEST-TEXT")
    ctx["history"] = [*ctx["history"], ctx["newest"]]
    for part in (
        renderer.render("reply", "customer", "en", ctx).text,
        renderer.render("reply", "customer", "en", ctx).html,
    ):
        marks = [
            part.index("There is a new comment"),
            part.index("NEWEST-TEXT"),
            part.index("https://tickets.example/t/TOKEN"),
            part.index("Ticket details"),
            part.index("Order details"),
            part.index("Comment history"),
        ]
        assert marks == sorted(marks)
        assert part.rindex("NEWEST-TEXT") > part.index("Comment history")


def test_reason_codes_are_labelled_in_the_recipients_locale(renderer: Renderer) -> None:
    ctx = make_ctx("opened", ticket_type="tech_support")
    assert (
        "Impossible de télécharger le produit"
        in renderer.render("opened", "vendor", "fr", ctx).text
    )
    ctx = make_ctx("opened")
    ctx["ticket"]["reason"] = None  # a missing reason is "other"
    assert "Motivo: Outro" in renderer.render("opened", "vendor", "pt", ctx).text


def test_long_lines_are_wrapped_and_short_ones_left_alone() -> None:
    assert wrap_text("short line\nand another") == "short line\nand another"
    url = "https://tickets.example/" + "x" * 100
    long = ("word " * 40).strip() + " " + url
    wrapped = wrap_text(long).split("\n")
    assert url in wrapped  # a long word stays whole
    assert all(len(line) <= 76 for line in wrapped if line != url)
    quoted = wrap_text("> " + "quoted " * 20).split("\n")
    assert all(line.startswith("> ") for line in quoted)


def test_text_part_lines_stay_short(renderer: Renderer) -> None:
    ctx = make_ctx("reply")
    ctx["newest"] = make_comment(4, text="a sentence that goes on " * 30)
    out = renderer.render("reply", "customer", "de", ctx)
    assert max(len(line) for line in out.text.splitlines()) <= 100


def test_rendering_costs_little_more_than_bare_jinja(renderer: Renderer) -> None:
    """A 20-comment history, both parts, within 3x of Jinja rendering the same templates."""
    ctx = make_ctx("reply", comments=20)
    text_name, html_name = renderer.template_names("reply", "customer", "en")
    env = renderer.environment
    text_t, html_t = env.get_template(text_name), env.get_template(html_name)
    values = renderer._context("reply", "customer", "en", ctx)

    def ours() -> None:
        renderer.render("reply", "customer", "en", ctx)

    def bare() -> None:
        text_t.render(values)
        html_t.render(values)

    def best(fn: object, rounds: int = 5, n: int = 30) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(n):
                fn()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    ours(), bare()  # warm the caches
    assert best(ours) < 3 * best(bare)


# --- mail about a vendor's account and standing ---------------------------------------------

@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", ACCOUNT_EVENTS)
def test_account_mail_renders_for_each_audience_without_ticket_or_order(
    renderer: Renderer, event: str, locale: str
) -> None:
    for audience in AUDIENCES[event]:
        out = renderer.render(event, audience, locale, account_ctx(event))
        assert out.subject and "#" not in out.subject
        assert out.text.strip() and out.html.startswith("<!DOCTYPE html>")
        assert "ABCD1234" not in out.text and "{{" not in out.text + out.html


def test_signin_mail_carries_the_link_once_and_names_the_vendor(renderer: Renderer) -> None:
    link = "https://tickets.example/signin/TOKEN"
    ctx = account_ctx("signin", signin=link)
    vendor = renderer.render("signin", "vendor", "en", ctx)
    assert f"Sign in: {link}" in vendor.text and f'href="{link}"' in vendor.html
    assert "as acme." in vendor.text and "15 minutes" in vendor.text
    staff = account_ctx("signin", signin=link)
    staff["account"]["vendor"] = None
    assert "sign in to the workplace as staff." in renderer.render(
        "signin", "staff", "en", staff).text
    assert "en tant que acme" in renderer.render("signin", "vendor", "fr", ctx).text


def test_dispute_mail_counts_disputes_against_the_limit(renderer: Renderer) -> None:
    ctx = make_ctx("disputed", workplace="https://tickets.example/w/standing")
    ctx["account"] = {"vendor": "acme", "disputes": 1, "limit": 2, "revoked": False,
                      "note": None}
    out = renderer.render("disputed", "vendor", "en", ctx)
    assert out.subject == "Ticket Disputed [Ticket #1042]"
    assert ("Disputed: 1 of 2 before your right to answer refund and cancellation tickets "
            "is revoked.") in " ".join(out.text.split())
    assert "https://tickets.example/w/standing" in out.text
    ctx["account"] = {**ctx["account"], "disputes": 2, "revoked": True}
    out = renderer.render("disputed", "vendor", "de", ctx)
    assert "Anfechtungen: 2 von 2. Ihr Recht" in " ".join(out.text.split())


def test_revoked_mail_says_why_to_the_vendor_and_names_the_vendor_to_staff(
    renderer: Renderer,
) -> None:
    ctx = account_ctx("revoked", workplace="https://tickets.example/w/standing")
    vendor = " ".join(renderer.render("revoked", "vendor", "en", ctx).text.split())
    assert "was revoked after 2 disputed changes" in vendor
    assert "processed within 5 minutes" in vendor
    staff = " ".join(renderer.render("revoked", "staff", "en", ctx).text.split())
    assert "Vendor acme lost its right" in staff and "(limit 2)" in staff


def test_sale_mail_links_the_order_in_the_vendors_workplace(renderer: Renderer) -> None:
    page = "https://tickets.example/w/orders/ABCD1234"
    out = renderer.render("sale", "vendor", "en", make_ctx("sale", order_page=page))
    assert page in out.text and f'href="{page}"' in out.html


def test_a_dropped_reply_of_a_revoked_vendor_is_explained(renderer: Renderer) -> None:
    ctx = make_ctx("notice", notice_kind="reply_revoked")
    ctx["refused"] = None
    out = " ".join(renderer.render("notice", "vendor", "en", ctx).text.split())
    assert out.startswith("Your reply on ticket #1042 was not added: your right to answer")


# --- whole sentences per ticket type ---------------------------------------------------------

# What the first line says of each type, in German: the type is part of each sentence, with its
# article and case (a compound, never "%(type)s" put into a sentence).
GERMAN_WHY = {
    ("opened", "customer", "refund"): "Ihr Rückerstattungsantrag zur Bestellung ABCD1234 wurde "
                                      "als Ticket #1042 eröffnet.",
    ("opened", "customer", "tech_support"): "Ihr Antrag auf technische Unterstützung zur "
                                            "Bestellung ABCD1234 wurde als Ticket #1042 eröffnet.",
    ("opened", "vendor", "cancellation"): "Ein Stornierungsantrag wurde als Ticket #1042 zur "
                                          "Bestellung ABCD1234 (Guide) eröffnet.",
    ("changed", "customer", "refund"): "Es ist jetzt ein Rückerstattungsantrag (Vollständige "
                                       "Rückerstattung).",
    ("changed", "customer", "tech_support"): "Es ist jetzt ein Antrag auf technische "
                                             "Unterstützung.",
}


@pytest.mark.parametrize(("event", "audience", "ticket_type"), list(GERMAN_WHY))
def test_a_ticket_type_is_part_of_a_whole_sentence(renderer: Renderer, event: str,
                                                   audience: str, ticket_type: str) -> None:
    ctx = make_ctx(event, ticket_type=ticket_type)
    assert GERMAN_WHY[(event, audience, ticket_type)] in _why(
        renderer.render(event, audience, "de", ctx).text)


def _why(text: str) -> str:
    """The first paragraph of a mail's text part (why it was sent), its lines unwrapped."""
    return " ".join(text.split("\n\n")[0].split())


@pytest.mark.parametrize("ticket_type", TICKET_TYPES)
def test_each_type_has_its_own_sentence_in_every_language(renderer: Renderer,
                                                          ticket_type: str) -> None:
    """Opened by the vendor, changed, and the confirm notice: one entry per type, so French
    and Portuguese agree the article with the request (une demande, uma solicitação)."""
    cases = [("opened", "customer", None), ("changed", "customer", None),
             ("notice", "customer", "confirm_request")]
    for event, audience, kind in cases:
        ctx = make_ctx(event, ticket_type=ticket_type, notice_kind=kind)
        ctx["ticket"]["created_by"] = "vendor"
        said = {loc: _why(renderer.render(event, audience, loc, ctx).text) for loc in LOCALES}
        english_type = i18n.label("type", ticket_type, "en").lower()
        assert english_type in said["en"]
        assert "une " + i18n.label("type", ticket_type, "fr").lower() in said["fr"]
        assert "uma " + i18n.label("type", ticket_type, "pt").lower() in said["pt"]
        assert i18n.label("type", ticket_type, "de") in said["de"]


@pytest.mark.parametrize(("created_by", "german"), [
    ("customer", "(vom Kunden)"), ("vendor", "(vom Anbieter)"),
    ("staff", "(vom Kundenservice)"), ("system", "(vom System)")])
def test_who_opened_the_ticket_is_said_whole(renderer: Renderer, created_by: str,
                                             german: str) -> None:
    ctx = make_ctx("reply")
    ctx["ticket"]["created_by"] = created_by
    out = renderer.render("reply", "customer", "de", ctx)
    opened = i18n.format_when(T0, "de", "Europe/Berlin")
    assert f"Eröffnet: {opened} {german}" in out.text
    assert f"{opened} {german}" in out.html
