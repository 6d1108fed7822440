"""What every page shares: templates, security headers, CSRF, bounded forms, link checks, and
the viewer's language.

A page is in its viewer's language: the party's own locale when the page knows the party
(customer: the order's; vendor: the vendor's), else the browser's `Accept-Language`, else
English. Every page's words come from the message catalogue (`gateway.services.i18n`): one
Jinja2 environment per locale, dates and money formatted by Babel in that locale.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
import nh3
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.domain.errors import Conflict, Forbidden, OutsideWindow, UserError
from gateway.domain.inline_images import CID_SCHEME, cid_filter
from gateway.domain.links import link_expiry
from gateway.domain.locales import DEFAULT_LOCALE, LOCALES
from gateway.domain.texts import Text, _
from gateway.domain.tokens import Claim, InvalidToken
from gateway.services import i18n
from gateway.services.runtime import Runtime
from web import changes

T = TypeVar("T")
_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {CID_SCHEME}  # cid: on `img src` only (cid_filter)

FORM_LIMIT = 64 * 1024  # bytes of a posted form; a comment longer than this belongs in mail
CSRF_COOKIE = "ticketgw_csrf"
CSRF_FIELD = "csrf"

# Tokens are in the URLs: no referrer may carry them off, no frame may show them.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """Pure ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# The request's Accept-Language, for pages that know no party (errors, expired links, sign-in).
_ACCEPT_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("accept_language",
                                                                       default="")


class ViewerLanguage:
    """Pure ASGI middleware: remembers the request's Accept-Language for `Web.locale`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"accept-language":
                    _ACCEPT_LANGUAGE.set(value.decode("latin-1")[:200])
                    break
            else:
                _ACCEPT_LANGUAGE.set("")
        await self.app(scope, receive, send)


class Csrf:
    """Signed double-submit: a random nonce in a cookie, HMAC(nonce, page path) in the form.

    No server-side session: a POST is accepted only from a browser that holds the cookie
    our page set and the field our page rendered for that very path (OWASP's signed
    double-submit cookie). The path carries the party's token, so a field is good for one
    page only.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"ticketgw-csrf\0" + secret.encode()).digest()

    @staticmethod
    def nonce(request: Request) -> str:
        """The browser's nonce, kept across tabs; a fresh one when it has none."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if 20 <= len(current) <= 64 and current.replace("-", "").replace("_", "").isalnum():
            return current
        return secrets.token_urlsafe(24)

    def field(self, nonce: str, path: str) -> str:
        return hmac.new(self._key, f"{nonce}\0{path}".encode(), hashlib.sha256).hexdigest()

    def check(self, request: Request, form: Mapping[str, str]) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE)
        sent = form.get(CSRF_FIELD)
        if not nonce or not sent:
            return False
        return hmac.compare_digest(sent, self.field(nonce, request.url.path))


def _sanitised(html: str | None, images: Mapping[str, str] | None = None) -> Markup | None:
    """Mail HTML was cleaned with nh3 at intake; clean it again on the way out. `images`:
    the signed links of the message's own pictures by Content-ID, which its `<img
    src="cid:…">` show (a picture it does not carry is dropped, never a broken link, and so is
    any other picture: remote ones would not load under the page's CSP, and a relative one
    would call our own pages; nh3 lets our relative links through and still cleans the
    rest)."""
    if not html:
        return None
    found = images or {}
    return Markup(nh3.clean(html, url_schemes=_URL_SCHEMES, attribute_filter=cid_filter(
        found.get, other_pictures=False)))


def _when(value: datetime | None, zone: str = "UTC", with_zone: bool = True, *,
          locale: str = DEFAULT_LOCALE) -> str:
    """Times shown to people are in the vendor's zone, with its name (SPEC 11.14), in the
    viewer's format: `Thu, Mar 5, 2026, 10:00 AM (Europe/Berlin)`; without the name where
    the sentence says whose time it is ("your time" to the vendor, whose zone it is)."""
    return i18n.format_when(value, locale, zone, with_zone=with_zone)


def _short(value: datetime | None, zone: str = "UTC", *, locale: str = DEFAULT_LOCALE) -> str:
    """A time in a list whose heading names the zone: no zone name on every line."""
    return i18n.format_when(value, locale, zone, with_zone=False, weekday=False)


def _money(value: object, currency: str | None = None, *, locale: str = DEFAULT_LOCALE) -> str:
    """An amount in the viewer's format: `$47.00`, `47,00 $US`, `47,00 $`, `US$ 47,00`."""
    return i18n.format_money(value, currency, locale)


def _label(code: str | None, group: str | None = None, *, locale: str = DEFAULT_LOCALE) -> str:
    """A code (`not_satisfied`) by its label in the viewer's language."""
    return i18n.label(group, code, locale)


def _say(text: Text | str | None, *, locale: str = DEFAULT_LOCALE) -> str:
    return i18n.say(text, locale)


def make_environment(locale: str = DEFAULT_LOCALE) -> Environment:
    """The page templates with the words and formats of `locale` (`i18n.install` adds the
    catalogue itself)."""
    env = Environment(
        loader=PackageLoader("web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[i18n.BakedI18n],
    )
    env.filters["when"] = functools.partial(_when, locale=locale)
    env.filters["short"] = functools.partial(_short, locale=locale)
    env.filters["label"] = functools.partial(_label, locale=locale)
    env.filters["change"] = functools.partial(changes.change, locale=locale)
    env.filters["refund"] = functools.partial(changes.refund, locale=locale)
    env.filters["money"] = functools.partial(_money, locale=locale)
    env.filters["say"] = functools.partial(_say, locale=locale)
    env.filters["bytes"] = functools.partial(i18n.format_size, locale=locale)
    env.globals["colon"] = i18n.colon(locale)
    env.filters["sanitised"] = _sanitised
    return env


@dataclass
class Web:
    """What the route handlers share: the runtime, templates, CSRF signer, health checks."""

    runtime: Runtime
    broker_check: Callable[[], bool]
    csrf: Csrf = field(init=False)
    envs: Mapping[str, Environment] = field(init=False)

    def __post_init__(self) -> None:
        self.csrf = Csrf(self.runtime.settings.secret_key)
        self.envs = i18n.environments(make_environment, LOCALES)

    @property
    def env(self) -> Environment:
        """The English environment (for code that renders outside a request)."""
        return self.envs[DEFAULT_LOCALE]

    def locale(self, party_locale: str | None = None) -> str:
        """The viewer's locale: the party's own, else the browser's, else English."""
        return i18n.negotiate(_ACCEPT_LANGUAGE.get(), party_locale)

    def now(self) -> datetime:
        return self.runtime.clock.now()

    def page(self, request: Request, template: str, context: Mapping[str, Any],
             status: int = 200, *, locale: str | None = None) -> HTMLResponse:
        """A page; one with forms gets the CSRF field and its cookie (`csrf_for(path)`: the
        field of a form on this page that posts to another path)."""
        nonce = self.csrf.nonce(request)
        loc = self.locale(locale)
        html = self.envs[loc].get_template(template).render(
            **context, csrf=self.csrf.field(nonce, request.url.path), path=request.url.path,
            csrf_for=lambda path: self.csrf.field(nonce, path))
        response = HTMLResponse(html, status_code=status, headers={"content-language": loc})
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        return response

    def problem(self, status: int, title: str | Text, message: str | Text, *,
                back: str | None = None, back_label: str | Text | None = None,
                locale: str | None = None, ticket: tuple[int, str] | None = None
                ) -> HTMLResponse:
        """A page that says what went wrong, in the viewer's language (a `Text` is said in
        it; a plain string, such as an error from outside the catalogue, is shown as it is).
        `ticket`: (number, link) of the ticket the message names, linked under it."""
        loc = self.locale(locale)
        html = self.envs[loc].get_template("message.html.j2").render(
            title=i18n.say(title, loc), message=_sentence(i18n.say(message, loc)), back=back,
            back_label=i18n.say(back_label or _("Back"), loc), ticket=ticket)
        return HTMLResponse(html, status_code=status, headers={"content-language": loc})

    def refused(self, message: str | Text, back: str | None, *,
                locale: str | None = None, status: int = 409,
                ticket: tuple[int, str] | None = None) -> HTMLResponse:
        return self.problem(status, _("Not done"), message, back=back, locale=locale,
                            ticket=ticket)

    def refused_for(self, exc: UserError, back: str | None, claim: Claim, *,
                    locale: str | None = None) -> HTMLResponse:
        """`exc` refused to the party of `claim`; the ticket it names (`exc.ticket`: "this
        order already has an open refund ticket, #12") is linked under it, signed for the same
        party, so the person goes there instead of looking for it."""
        named = None if exc.ticket is None else (exc.ticket,
                                                 self.sign_ticket_page(exc.ticket, claim))
        return self.refused(exc.message, back, locale=locale, status=refusal_status(exc),
                            ticket=named)

    def forbidden_form(self, back: str, *, locale: str | None = None) -> HTMLResponse:
        return self.problem(
            403, _("Form expired"),
            _("This form could not be checked, so nothing was changed. Open the page again "
               "from the link in your mail and send the form from there."),
            back=back, back_label=_("Open the page again"), locale=locale)

    def claim(self, token: str, purpose: str) -> Claim | HTMLResponse:
        """The token's claim, or the 404/410 page a person can act on."""
        try:
            return self.runtime.tokens.verify(token, purpose, self.now())
        except InvalidToken as exc:
            if exc.code == "expired_token":
                return self.problem(
                    410, _("Link expired"),
                    _("This link has expired. Use the link in a newer mail about the same "
                       "ticket or order, or simply reply to that mail."))
            return self.link_not_valid()

    def link_not_valid(self) -> HTMLResponse:
        """The 404 page of a link that is not ours (or names nothing any more)."""
        return self.problem(
            404, _("Link not valid"),
            _("This link is not valid. Check that it was copied whole from the mail, or "
               "reply to the mail instead."))

    def sign_ticket_page(self, number: int, claim: Claim) -> str:
        """A ticket page for the same party, valid as long as the link that led here."""
        expires = claim.expires_at or link_expiry(self.now(), self.runtime.settings.link_ttl_days)
        return "/t/" + self.runtime.tokens.sign("ticket", number, claim.party, expires)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Database work runs in a worker thread: the event loop never blocks on it."""
        return await anyio.to_thread.run_sync(func, *args)


def refusal_status(exc: UserError) -> int:
    """What a refused form answers: 403 the party may not, 409 the ticket's or order's state
    does not allow it (pressing again will not help), 422 a field of the form is wrong."""
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, (Conflict, OutsideWindow)) or exc.code in ("conflict", "product_conflict"):
        return 409
    return 422


def _sentence(message: str) -> str:
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (URL-encoded or multipart), at most FORM_LIMIT bytes; last value wins."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > FORM_LIMIT:
        raise FormTooLarge
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=0, max_fields=50, max_part_size=FORM_LIMIT)
        return {k: v for k, v in form.items() if isinstance(v, str)}
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > FORM_LIMIT:
            raise FormTooLarge
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return dict(pairs[:50])


def too_large(web: Web) -> Response:
    return web.problem(413, _("Too long"),
                       _("That text is too long for the page. Send it by replying to the mail "
                          "instead; long messages and attachments are welcome there."))


async def checked_form(web: Web, request: Request) -> dict[str, str] | Response:
    """A posted form whose CSRF token checks out, or the page that says why not."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        return too_large(web)
    if not web.csrf.check(request, form):
        return web.forbidden_form(request.url.path)
    return form
