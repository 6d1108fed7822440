"""The message catalogue: every entry translated in fr, de and pt, the viewer's language picked
right, Texts said in any language, and dates and money in the reader's format."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from gateway.domain.texts import Text, _
from gateway.services import i18n

ROOT = Path(__file__).resolve().parents[2]
OTHER_LOCALES = ("fr", "de", "pt")
# Entries a language writes exactly as English does: words it shares, and the subject token.
SAME_AS_ENGLISH = {
    "fr": {"Ticket", "Tickets", "%(num)s ticket", "Type", "Messages", "Ticket #%(n)s", "Support"},
    "de": {"Ticket", "Tickets", "Status", "System", "Ticket #%(n)s", "Problem", "Link", "E-Mail"},
    "pt": {"Status"},
}
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdr]")


def catalogue(locale: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """(msgid, msgstr forms, fuzzy) of every entry of a locale's .po file."""
    with (ROOT / "locale" / locale / "LC_MESSAGES" / "ticketgw.po").open("rb") as fh:
        cat = read_po(fh, locale=locale)
    entries = []
    for message in cat:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        entries.append((msgid, tuple(forms), message.fuzzy))
    return entries


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_every_catalogue_entry_is_translated(locale: str) -> None:
    untranslated = [msgid for msgid, forms, fuzzy in catalogue(locale)
                    if fuzzy or not all(forms)]
    assert not untranslated, untranslated


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_no_sentence_is_left_in_english(locale: str) -> None:
    same = [msgid for msgid, forms, _fuzzy in catalogue(locale)
            if msgid in forms and msgid not in SAME_AS_ENGLISH[locale]]
    assert not same, same


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_translations_keep_the_placeholders_of_their_msgid(locale: str) -> None:
    wrong = [msgid for msgid, forms, _fuzzy in catalogue(locale)
             if any(sorted(_PLACEHOLDER.findall(f)) != sorted(_PLACEHOLDER.findall(msgid))
                    for f in forms if "%(num)d" not in msgid)]
    assert not wrong, wrong


def test_the_catalogue_holds_every_msgid_the_code_and_templates_use(tmp_path: Path) -> None:
    """`pybabel extract` (babel.cfg) finds nothing the committed template lacks: a new
    sentence cannot reach a reader untranslated without this test saying so."""
    pot = tmp_path / "fresh.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as fh:
        fresh = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    for locale in OTHER_LOCALES:
        known = {msgid for msgid, _forms, _fuzzy in catalogue(locale)}
        assert not fresh - known, (locale, sorted(fresh - known))


def test_the_viewers_locale_is_the_partys_then_the_browsers_then_english() -> None:
    assert i18n.negotiate("de-DE,de;q=0.9,en;q=0.8", "pt") == "pt"
    assert i18n.negotiate("de-DE,de;q=0.9,en;q=0.8", None) == "de"
    assert i18n.negotiate("es-ES,fr;q=0.5,pt-BR;q=0.7", None) == "pt"
    assert i18n.negotiate("fr-CA", None) == "fr"
    assert i18n.negotiate("es, ja;q=0.9", None) == "en"
    assert i18n.negotiate("de;q=0, fr", None) == "fr"
    assert i18n.negotiate("", "xx") == "en"
    assert i18n.negotiate(None, None) == "en"


def test_a_text_is_said_in_any_language_and_survives_json() -> None:
    refused = _("this ticket is closed; %(hint)s", hint=_("staff can reopen it"))
    assert refused == "this ticket is closed; staff can reopen it"  # what logs and the CLI show
    again = Text.from_json(refused.to_json())
    assert again == refused
    assert i18n.say(again, "fr") == "ce ticket est fermé ; le service client peut le rouvrir"
    assert i18n.say(again, "de") == "dieses Ticket ist geschlossen; der Kundenservice kann es " \
        "wieder öffnen"
    assert i18n.say("plain, as written", "pt") == "plain, as written"
    assert Text.from_json({"msgid": "no such %(thing)s"}) == "no such %(thing)s"


def test_dates_and_money_are_in_the_readers_format() -> None:
    at = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert i18n.format_when(at, "en", "Europe/Berlin") == "Tue, Dec 8, 2026, 10:00 AM " \
        "(Europe/Berlin)"
    assert i18n.format_when(at, "de", "Europe/Berlin") == "Di., 8. Dez. 2026, 10:00 " \
        "(Europe/Berlin)"
    assert i18n.format_when(at, "fr", "Not/AZone") == "mar. 8 déc. 2026, 09:00 (UTC)"
    assert i18n.format_money("47.00", "USD", "en") == "$47.00"
    # a no-break space keeps an amount and its currency on one line
    assert i18n.format_money("1234.5", "EUR", "de") == "1.234,50\u00a0€"
    assert i18n.format_money("47", "USD", "pt") == "US$\u00a047,00"
    assert i18n.format_money("47", "USD", "fr") == "47,00\u00a0$US"


def test_a_refund_window_refusal_is_said_in_the_readers_language() -> None:
    from gateway.domain import rules
    from gateway.domain.errors import OutsideWindow
    from tests.gateway.domain.test_rules import CLICKBANK, EMPTY, C, T, local, order, vendor

    with pytest.raises(OutsideWindow) as caught:
        rules.check_open(CLICKBANK, T.REFUND, C, order("2026-09-01 10:00"), vendor(),
                         local("2026-11-28 12:00"), EMPTY)
    assert i18n.say(caught.value.message, "pt") == (
        "este pedido foi comprado em 2026-09-01; os consumidores podem pedir um reembolso até "
        "60 dias após a venda, ou seja, até 2026-10-31")
    assert i18n.say(caught.value.message, "fr") == (
        "cette commande a été achetée le 2026-09-01 ; les clients peuvent demander un "
        "remboursement jusqu'à 60 jours après la vente, soit jusqu'au 2026-10-31")
    # German counts in the dative after "bis zu": a whole sentence per case, with its plural
    assert i18n.say(caught.value.message, "de") == (
        "diese Bestellung wurde am 2026-09-01 gekauft; Kunden können bis zu 60 Tagen nach dem "
        "Kauf eine Rückerstattung beantragen, also bis 2026-10-31")


def test_a_one_month_window_is_said_in_the_singular() -> None:
    from gateway.domain import rules
    from gateway.domain.errors import OutsideWindow
    from tests.gateway.domain.test_rules import ADDONS, EMPTY, C, T, local, order, vendor

    with pytest.raises(OutsideWindow) as caught:
        rules.check_open(ADDONS, T.REFUND, C, order("2026-09-01 10:00"), vendor(),
                         local("2026-11-28 12:00"), EMPTY)
    said = {loc: i18n.say(caught.value.message, loc) for loc in ("en", "de", "fr", "pt")}
    assert "up to 1 month after the sale, that is until 2026-10-01" in said["en"]
    assert "bis zu 1 Monat nach dem Kauf" in said["de"]
    assert "jusqu'à 1 mois après la vente" in said["fr"]
    assert "até 1 mês após a venda" in said["pt"]
    again = Text.from_json(caught.value.message.to_json())  # as an outbox row keeps it
    assert i18n.say(again, "de") == said["de"]


def test_a_second_open_ticket_is_refused_in_a_sentence_of_its_type() -> None:
    """One whole sentence per type names the open ticket (German builds its compound)."""
    from gateway.domain import rules
    from gateway.domain.errors import Conflict
    from tests.gateway.domain.test_rules import CLICKBANK, C, T, local, order, vendor

    facts = order(recurring=True, subscription_active=True)
    said = {}
    for kind in T:
        with pytest.raises(Conflict) as caught:
            rules.check_open(CLICKBANK, kind, C, facts, vendor(), local("2026-09-02 10:00"),
                             {kind: 41})
        assert caught.value.ticket == 41
        said[kind] = i18n.say(caught.value.message, "de")
    assert said[T.REFUND].startswith("diese Bestellung hat bereits ein offenes "
                                     "Rückerstattungsticket, #41")
    assert "ein offenes Stornierungsticket, #41" in said[T.CANCELLATION]
    assert "ein offenes Ticket für technische Unterstützung, #41" in said[T.TECH_SUPPORT]


def test_sentences_are_translated_when_a_template_is_compiled() -> None:
    """BakedI18n: the compiled template holds the translation; only the values are put in
    per render, escaped where the template escapes, as newstyle gettext does."""
    from jinja2 import Environment

    def env_of(locale: str, autoescape: bool) -> Environment:
        env = Environment(extensions=[i18n.BakedI18n], autoescape=autoescape)
        i18n.install(env, locale)
        return env

    source = ('{% trans n=n %}Ticket #{{ n }} is closed: your reply was not added and nothing '
              'was changed.{% endtrans %} {{ _("Reply") }} · {{ pgettext("heading", "Closed") }}'
              ' · {{ _("Open ticket #%(n)s", n=n) }}')
    code = env_of("fr", False).compile(source, raw=True)
    assert "Le ticket #%(n)s est fermé" in code and "Répondre" in code and "Fermé le" in code
    assert "is closed" not in code and "'Reply'" not in code  # no English left to look up
    fr = env_of("fr", False).from_string(source).render(n=7)
    assert fr == ("Le ticket #7 est fermé : votre réponse n'a pas été ajoutée et rien n'a été "
                  "modifié. Répondre · Fermé le · Ouvrir le ticket #7")
    html = env_of("fr", True).from_string(source).render(n="<b>7</b>")
    assert "Le ticket #&lt;b&gt;7&lt;/b&gt; est fermé" in html  # values escaped, words not
    assert env_of("en", True).from_string(source).render(n=7).startswith(
        "Ticket #7 is closed: your reply")
