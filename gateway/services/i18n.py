"""The message catalogue: every sentence people read, in en, fr, de and pt, and their formats.

The catalogues are gettext `.po` files managed by Babel (`babel.cfg`, `locale/<ll>/
LC_MESSAGES/ticketgw.po`; docs/translating.md). They are compiled in memory the first time a
process asks for a locale, so a fresh clone works after `pip install -e .` with no build step,
and a `.po` edit shows at the next start. English is the source language: its msgids are the
English text, and an entry missing from a catalogue reads in English.

Mail (`outbound.render`) and pages (`web.pages`) install these translations into their Jinja2
environments, one environment per locale; code that builds text (notice reasons, page
messages) says `Text`s with `say`. Dates and money are formatted by Babel in the reader's
locale and, where known, time zone.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, negotiate_locale
from babel.dates import format_skeleton, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, nodes
from jinja2.ext import InternationalizationExtension
from jinja2.lexer import Token, TokenStream

from gateway.domain.errors import ConfigError
from gateway.domain.labels import english_label
from gateway.domain.locales import DEFAULT_LOCALE, LOCALES, pick_locale
from gateway.domain.texts import Text

DOMAIN: Final = "ticketgw"
# An editable install (and a clone) reads the catalogues beside the packages; a wheel installs
# them as data files under the environment's `share/ticketgw/locale` (pyproject.toml).
_CANDIDATES: Final = (
    Path(__file__).resolve().parents[2] / "locale",
    Path(sysconfig.get_path("data")) / "share" / "ticketgw" / "locale",
)


def locale_dir() -> Path:
    """The folder holding `<ll>/LC_MESSAGES/ticketgw.po`."""
    for folder in _CANDIDATES:
        if (folder / DEFAULT_LOCALE / "LC_MESSAGES" / f"{DOMAIN}.po").is_file():
            return folder
    raise ConfigError("the message catalogues (locale/*/LC_MESSAGES/ticketgw.po) are missing; "
                      "reinstall ticketgw")


@functools.cache
def translations(locale: str) -> _gettext.GNUTranslations:
    """The compiled catalogue of one of LOCALES (fuzzy entries left out, as `pybabel compile`
    does); any other tag gets the catalogue `pick_locale` chooses for it."""
    loc = pick_locale(locale)
    po_file = locale_dir() / loc / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_file.open("rb") as fh:
        catalog = read_po(fh, locale=loc, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


# The arguments come in the order `pybabel extract` reads them (msgid first), the locale last.
def gettext(msgid: str, *, locale: str) -> str:
    return translations(locale).gettext(msgid)


def pgettext(context: str, msgid: str, *, locale: str) -> str:
    return translations(locale).pgettext(context, msgid)


def ngettext(singular: str, plural: str, n: int, *, locale: str) -> str:
    return translations(locale).ngettext(singular, plural, n)


def say(text: Text | str | None, locale: str) -> str:
    """`text` in `locale`: a Text is translated with its values (Texts among them too); a
    plain string is shown as it is (it was not written for the catalogue)."""
    if text is None:
        return ""
    if not isinstance(text, Text):
        return str(text)
    params = {k: say(v, locale) if isinstance(v, Text) else v for k, v in text.params.items()}
    if text.plural is not None:
        num = params.get("num")
        translated = ngettext(text.msgid, text.plural, num if isinstance(num, int) else 0,
                              locale=locale)
    else:
        translated = gettext(text.msgid, locale=locale)
    if not params:
        return translated
    try:
        return translated % params
    except (KeyError, TypeError, ValueError):
        # a translation whose placeholders do not match its msgid: English beats nothing
        english = text.plural if text.plural is not None and params.get("num") != 1 \
            else text.msgid
        return english % params


def label(group: str | None, code: str | None, locale: str) -> str:
    """The label of a code in `locale` (`refund` → `Demande de remboursement`); without a
    group, the first group that has the code."""
    english = english_label(group, code)
    return gettext(english, locale=locale) if english else ""


def negotiate(accept_language: str | None, first: str | None = None) -> str:
    """The viewer's locale: `first` (the party's own) when it is one of ours, then the
    browser's `Accept-Language`, then English."""
    if first and pick_locale(first) == first.split("-")[0].split("_")[0].lower():
        return pick_locale(first)
    wanted = [tag.replace("_", "-") for tag in _accepted(accept_language or "")]
    return negotiate_locale(wanted, list(LOCALES), sep="-") or \
        negotiate_locale([t.split("-")[0] for t in wanted], list(LOCALES), sep="-") or \
        DEFAULT_LOCALE


def _accepted(header: str) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (q=0 left out)."""
    weighed: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, rest = part.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighed.append((-q, i, tag))
    return [tag for _, _, tag in sorted(weighed)]


@functools.lru_cache(maxsize=256)
def zone(name: str | None) -> ZoneInfo:
    """An IANA zone; UTC for a missing or unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_when(at: datetime | None, locale: str, zone_name: str | None = None, *,
                with_zone: bool = True, weekday: bool = True) -> str:
    """An instant in the reader's format and zone, with the zone's name (SPEC 11.14):
    `jeu. 5 mars 2026, 10:00 (Europe/Berlin)`, `Thu, Mar 5, 2026, 10:00 AM (Europe/Berlin)`.
    CLDR's patterns keep each locale's own order, words and 12/24-hour clock."""
    if at is None:
        return "—"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return _when(at, pick_locale(locale), zone_name, with_zone, weekday)


@functools.lru_cache(maxsize=4096)  # a mail's history shows the same instants to each reader
def _when(at: datetime, locale: str, zone_name: str | None, with_zone: bool,
          weekday: bool) -> str:
    tz = zone(zone_name)
    loc = _babel_locale(locale)
    day = format_skeleton("yMMMEd" if weekday else "yMMMd", at, tzinfo=tz, locale=loc)
    hour = format_time(at, "short", tzinfo=tz, locale=loc)
    # the locale's own way of joining a date and a time ("{1}, {0}" in en, fr and de)
    shown = str(get_datetime_format("medium", locale=loc)).replace("'", "").format(hour, day)
    shown = shown.replace("\u202f", " ")  # CLDR's narrow no-break space breaks copy-paste
    return f"{shown} ({tz.key})" if with_zone else shown


def format_money(amount: object, currency: str | None, locale: str) -> str:
    """An amount in the reader's format (`47,00 $US`, `US$ 47,00`); without a currency, the
    number alone."""
    return _money(str(amount), currency, locale)


@functools.lru_cache(maxsize=4096)  # a mail shows the same few amounts again and again
def _money(amount: str, currency: str | None, locale: str) -> str:
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        return amount
    loc = _babel_locale(locale)
    if not currency:
        return format_decimal(value, format="#,##0.00", locale=loc)
    return format_currency(value, currency, locale=loc).replace("\u202f", " ")


def format_size(size: object, locale: str) -> str:
    """A file size: `2 KB`, `1,5 Mo` (French writes octets)."""
    try:
        n = int(size)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(size)
    units = ("o", "Ko", "Mo") if pick_locale(locale) == "fr" else ("B", "KB", "MB")
    loc = _babel_locale(locale)
    if n < 1024:
        return f"{n} {units[0]}"
    if n < 1024 * 1024:
        return f"{format_decimal(round(n / 1024), locale=loc)} {units[1]}"
    return f"{format_decimal(round(n / (1024 * 1024), 1), locale=loc)} {units[2]}"


def colon(locale: str) -> str:
    """The colon after a label: `Statut : ouvert` in French, `Status: open` elsewhere."""
    return " : " if pick_locale(locale) == "fr" else ": "


@functools.cache
def _babel_locale(locale: str) -> Locale:
    return Locale.parse(pick_locale(locale))


class BakedI18n(InternationalizationExtension):
    """`jinja2.ext.i18n` for an environment of one locale (`install`): a sentence without a
    plural is translated once, when its template is compiled, and only its values are put in
    per render. Rendering a mail then costs what it did before the catalogue (docs/
    translating.md); what it says is the same as newstyle gettext: the translation is safe
    markup, the values are escaped.

    `{% trans %}` blocks are baked in `_make_node`; `_("...")` and `pgettext("...", "...")`
    with constant arguments and no values become string constants in `filter_stream` (one
    without `%` only, so nothing changes its meaning).
    """

    def _make_node(self, singular: str, plural: str | None, context: str | None,
                   variables: dict[str, nodes.Expr], plural_expr: nodes.Expr | None,
                   vars_referenced: bool, num_called_num: bool) -> nodes.Output:
        catalogue = getattr(self.environment, "ticketgw_translations", None)
        if catalogue is None or plural_expr is not None:
            return super()._make_node(singular, plural, context, variables, plural_expr,
                                      vars_referenced, num_called_num)
        text = (catalogue.pgettext(context, singular) if context is not None
                else catalogue.gettext(singular))
        # newstyle gettext: Markup(translation) % values, so `%%` reads `%` and values escape
        node: nodes.Expr = nodes.Mod(nodes.MarkSafeIfAutoescape(nodes.Const(text)), nodes.Dict(
            [nodes.Pair(nodes.Const(key), value) for key, value in variables.items()]))
        return nodes.Output([node])

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        catalogue = getattr(self.environment, "ticketgw_translations", None)
        if catalogue is None:
            yield from stream
            return
        window: list[Token] = []
        for token in stream:
            window.append(token)
            baked = _baked_call(window, catalogue)  # takes the call's tokens out
            if baked is not None:
                window.append(baked)
            while len(window) > 6:
                yield window.pop(0)
        yield from window


def _baked_call(window: list[Token], catalogue: _gettext.GNUTranslations) -> Token | None:
    """The translation of a `_("…")` or `pgettext("…", "…")` call the window ends with."""
    kinds = [t.type for t in window[-6:]]
    if kinds[-4:] == ["name", "lparen", "string", "rparen"] and window[-4].value in (
            "_", "gettext"):
        call, msgid = window[-4], window[-2].value
        text = catalogue.gettext(msgid)
        cut = 4
    elif kinds == ["name", "lparen", "string", "comma", "string", "rparen"] and \
            window[-6].value == "pgettext":
        call, msgid = window[-6], window[-2].value
        text = catalogue.pgettext(window[-4].value, msgid)
        cut = 6
    else:
        return None
    if "%" in msgid or "%" in text:
        return None
    del window[-cut:]
    return Token(call.lineno, "string", text)


def install(env: Environment, locale: str) -> None:
    """Give a Jinja2 environment (built with `BakedI18n` or `jinja2.ext.i18n`) the catalogue
    of `locale`: `_()`, `{% trans %}`, `pgettext`, plus `label(group, code)` and `locale`."""
    env.policies["ext.i18n.trimmed"] = True
    env.extend(ticketgw_translations=translations(locale))
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = pick_locale(locale)
    env.globals["label"] = functools.partial(label, locale=pick_locale(locale))


def environments(make: Callable[[str], Environment],
                 locales: Iterable[str] = LOCALES) -> Mapping[str, Environment]:
    """One environment per locale (`make(locale)`), each with its catalogue installed."""
    made: dict[str, Environment] = {}
    for loc in locales:
        env = made[loc] = make(loc)
        install(env, loc)
    return made
