"""Render one outbound mail — fixed subject, text part, HTML part — in the recipient's locale.

Templates live in the `templates` package (`templates/email/<event>[.<audience>].{txt,html}.j2`,
one shared `_layout.*.j2`), loaded through the package so an installed wheel works. Their words
come from the message catalogue (`gateway.services.i18n`): one Jinja2 environment per locale
with that locale's translations installed (`jinja2.ext.i18n`). The renderer is built once per
process; templates are compiled on first use and kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)
from markupsafe import Markup, escape

from gateway.domain.locales import DEFAULT_LOCALE, LOCALES, pick_locale
from gateway.domain.texts import Text
from gateway.services import i18n
from outbound.wording import COLON, subject_for, type_name

# Who receives each event. Notices go to the sender only, whoever that was.
AUDIENCES: Final[Mapping[str, tuple[str, ...]]] = {
    "opened": ("customer", "vendor"),
    "reply": ("customer", "vendor"),
    "changed": ("customer", "vendor"),
    "closed": ("customer", "vendor"),
    "inactivity_warning": ("customer", "vendor"),
    "processed": ("customer", "vendor"),
    "escalated": ("customer", "vendor", "staff"),
    "notice": ("customer", "vendor", "staff"),
    "receipt": ("customer",),
    "sale": ("vendor",),
    "disputed": ("vendor",),
    "revoked": ("vendor", "staff"),
    "signin": ("vendor", "staff"),
}
# Mail about a vendor's account, not about one ticket or order.
ACCOUNT_EVENTS: Final = ("revoked", "signin")
EVENTS: Final = tuple(AUDIENCES)
NOTICE_KINDS: Final = (
    "command_refused",
    "request_not_processed",
    "confirm_request",
    "vendor_reply_closed",
    "dispute",
    "reply_revoked",
)

TEXT_WIDTH: Final = 76

_LINKS: Final = ("ticket", "to_refund", "dispute", "confirm", "receipt", "download", "signin",
                 "order_page", "workplace")
_TOP_DEFAULTS: Final[Mapping[str, Any]] = {
    "notice_kind": None,
    "reason_line_extra": None,
    "ticket": None,
    "order": None,
    "newest": None,
    "history": (),
    "zone": "UTC",
    "recipient": None,
    "staff_explanation": None,
    "refused": None,
    "account": None,  # a vendor's standing: disputes, limit, revoked (see docs/emails.md)
    # a product's refund also refunded its support subscriptions (addons): receipt, amount
    "support_refunds": (),
    "vendor_tips": False,  # the seed's communication tips (the addons profile's)
    # what the mail says about its moment (outbound.compose): the change its event records,
    # the #commands its reader may use, when an idle ticket closes, what to do with goods
    "change_line": None,
    "commands": (),
    "auto_close_at": None,
    "return_line": None,
}
_TICKET_DEFAULTS: Final[Mapping[str, Any]] = {
    "process_at": None,
    "closed_at": None,
    "close_reason": None,
    "refund_kind": None,
    "refund_amount": None,
    "escalated": False,
    "reason": None,
    "problem": None,
    "title": None,  # the customer's own subject (a ticket opened by mail)
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    """Turns (event, audience, locale, context) into a subject and two bodies.

    The context is plain data (see docs/emails.md); times are aware datetimes and are shown in
    `ctx["zone"]`, the vendor's IANA zone, with the zone's name (SPEC 11.14).
    """

    def __init__(self, locales: Iterable[str] = LOCALES) -> None:
        self.locales = tuple(loc for loc in locales if loc in LOCALES) or (DEFAULT_LOCALE,)
        self._envs = i18n.environments(_environment, self.locales)
        self._chosen: dict[tuple[str, str, str], tuple[Template, Template]] = {}

    @property
    def environment(self) -> Environment:
        """The environment of the first locale (English unless left out)."""
        return self._envs[self.locales[0]]

    def environment_for(self, locale: str) -> Environment:
        return self._envs[self._locale(locale)]

    def template_names(self, event: str, audience: str, locale: str) -> tuple[str, str]:
        """The text and HTML template names used for one event, audience and locale."""
        text, html = self._templates(event, audience, self._locale(locale))
        return str(text.name), str(html.name)

    def render(self, event: str, audience: str, locale: str, ctx: Mapping[str, Any]) -> Rendered:
        """The mail of `event` to `audience` in `locale`; `_context` and the wording trust the
        locale `_locale` settles here."""
        loc = self._locale(locale)
        text_t, html_t = self._templates(event, audience, loc)
        values = self._context(event, audience, loc, ctx)
        text = text_t.render(values)
        html = html_t.render(values)
        return Rendered(subject=values["subject"], text=text.strip() + "\n", html=html)

    def _locale(self, locale: str) -> str:
        """The locale to write in. One of ours is trusted as it is (the composer picked it from
        the recipient's outbox row); only a caller's raw tag (`fr_CA`, `xx`) is picked here."""
        if locale in self.locales:
            return locale
        loc = pick_locale(locale)
        return loc if loc in self.locales else DEFAULT_LOCALE

    def _templates(self, event: str, audience: str, locale: str) -> tuple[Template, Template]:
        key = (event, audience, locale)
        chosen = self._chosen.get(key)
        if chosen is None:
            if audience not in AUDIENCES.get(event, ()):
                raise ValueError(f"no {event!r} mail for audience {audience!r}")
            pair = []
            env = self._envs[locale]
            for fmt in ("txt", "html"):
                names = [f"{event}.{audience}.{fmt}.j2", f"{event}.{fmt}.j2"]
                try:
                    pair.append(env.select_template(names))
                except TemplateNotFound:
                    raise ValueError(f"no template for {event}/{audience}/{locale}") from None
            chosen = self._chosen[key] = (pair[0], pair[1])
        return chosen

    def _context(
        self, event: str, audience: str, locale: str, ctx: Mapping[str, Any]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {**_TOP_DEFAULTS, **ctx}
        links = dict.fromkeys(_LINKS)
        links.update(ctx.get("links") or {})
        if event == "sale":
            # SPEC 11.15: the receipt page is the customer's alone.
            links["receipt"] = links["download"] = None
        ticket = values["ticket"]
        if ticket is not None:
            ticket = values["ticket"] = {**_TICKET_DEFAULTS, **ticket}
        if event == "notice" and ticket is None:
            values["notice_kind"] = "request_not_processed"
        order = values["order"]
        if values["newest"] is not None:
            values["newest"] = _comment(values["newest"])
        values["history"] = [_comment(c) for c in values["history"] or ()]
        ticket_type = ticket["type"] if ticket else None
        values.update(
            event=event,
            audience=audience,
            locale=locale,
            links=links,
            colon=COLON[locale],
            money=functools.partial(i18n.format_money, locale=locale),
            refused=_sentence(i18n.say(Text.from_json(values["refused"]), locale)) or None,
            when=_when_in(str(values["zone"] or "UTC"), locale),
            type_name=type_name(ticket_type, locale),
            subject=subject_for(
                event,
                locale,
                ticket_number=ticket["number"] if ticket else None,
                ticket_type=ticket_type,
                receipt=order["receipt"] if order else None,
            ),
        )
        return values


def _sentence(text: str) -> str:
    """A refusal as a sentence of its own: capital first, full stop last."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _environment(locale: str) -> Environment:
    """The mail templates; `i18n.environments` installs `locale`'s catalogue."""
    env = Environment(
        loader=PackageLoader("templates", "email"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
        extensions=[i18n.BakedI18n],
    )
    env.filters.update(wrap=wrap_text, nl2br=nl2br, size=human_size)
    return env


def _comment(comment: Mapping[str, Any]) -> Mapping[str, Any]:
    if "attachments" in comment and comment["attachments"] is not None:
        return comment
    return {**comment, "attachments": ()}


def _when_in(zone: str, locale: str) -> Callable[[datetime | None], str]:
    """A formatter of instants for one mail: the reader's words and order, in the vendor's
    zone with its name, as pages show them (`i18n.format_when`): `Thu, Mar 5, 2026, 10:00 AM
    (Europe/Berlin)`, `Do., 5. März 2026, 10:00 (Europe/Berlin)`."""

    def when(at: datetime | None) -> str:
        if at is None:
            return ""
        if not isinstance(at, datetime):
            return str(at)
        return i18n.format_when(at, locale, zone)

    return when


def wrap_text(value: object, width: int = TEXT_WIDTH) -> str:
    """Wrap only the lines longer than `width`, at spaces; short text costs one length check.

    Jinja's `wordwrap` re-flows the whole body and was most of the render time (bench (a));
    mail text is mostly short lines already, so only the long ones are touched. Words longer
    than a line (URLs) are left whole.
    """
    text = str(value)
    if len(text) <= width and "\n" not in text:
        return text
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if all(len(line) <= width for line in lines):
        return text
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
        else:
            out.extend(_wrap_line(line, width))
    return "\n".join(out)


def _wrap_line(line: str, width: int) -> list[str]:
    stripped = line.lstrip("> ")
    prefix = line[: len(line) - len(stripped)]
    room = max(width - len(prefix), 20)
    lines: list[str] = []
    current = ""
    for word in stripped.split(" "):
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= room:
            current = f"{current} {word}"
        else:
            lines.append((prefix + current).rstrip())
            current = word
    lines.append((prefix + current).rstrip())
    return lines


def nl2br(value: object) -> Markup:
    """Escape text and keep its line breaks in HTML; web addresses in it become links (a
    comment from an HTML mail keeps its links as `text (address)`, inbound.html_text)."""
    text = str(value).replace("\r\n", "\n")
    escaped = _URL.sub(_link, str(escape(text)))
    return Markup("<br>\n").join(Markup(escaped).split("\n"))


# in escaped text: quotes and angle brackets are entities, so an address ends before them
_URL: Final = re.compile(r"https?://[^\s<>\"'&]+(?:&amp;[^\s<>\"'&]+)*")


def _link(found: re.Match[str]) -> str:
    """`<a>` for one address; closing punctuation after it stays text."""
    url = found.group(0)
    trail = ""
    while url and url[-1] in ".,;:!?)" and not (url[-1] == ")" and "(" in url):
        trail = url[-1] + trail
        url = url[:-1]
    return f'<a href="{url}">{url}</a>{trail}'


def human_size(value: object) -> str:
    try:
        size = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
