"""What every page shares: templates, security headers, CSRF, bounded forms, link checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import anyio.to_thread
import nh3
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.domain.links import link_expiry
from gateway.domain.tokens import Claim, InvalidToken
from gateway.services.runtime import Runtime

T = TypeVar("T")

FORM_LIMIT = 64 * 1024  # bytes of a posted form; a comment longer than this belongs in mail
CSRF_COOKIE = "ticketgw_csrf"
CSRF_FIELD = "csrf"

# Tokens are in the URLs: no referrer may carry them off, no frame may show them.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
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


def _sanitised(html: str | None) -> Markup | None:
    """Mail HTML was cleaned with nh3 at intake; clean it again on the way out."""
    return Markup(nh3.clean(html)) if html else None


def _when(value: datetime | None, zone: str = "UTC") -> str:
    """Times shown to people are in the vendor's zone, with its name (SPEC 11.14)."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") + f" ({zone})"


def _label(code: str | None) -> str:
    return (code or "").replace("_", " ").capitalize()


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["label"] = _label
    env.filters["sanitised"] = _sanitised
    return env


@dataclass
class Web:
    """What the route handlers share: the runtime, templates, CSRF signer, health checks."""

    runtime: Runtime
    broker_check: Callable[[], bool]
    csrf: Csrf = field(init=False)
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.csrf = Csrf(self.runtime.settings.secret_key)
        self.env = make_environment()

    def now(self) -> datetime:
        return self.runtime.clock.now()

    def page(self, request: Request, template: str, context: Mapping[str, Any],
             status: int = 200) -> HTMLResponse:
        """A page; one with forms gets the CSRF field and its cookie."""
        nonce = self.csrf.nonce(request)
        html = self.env.get_template(template).render(
            **context, csrf=self.csrf.field(nonce, request.url.path), path=request.url.path)
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        return response

    def problem(self, status: int, title: str, message: str, *,
                back: str | None = None, back_label: str = "Back") -> HTMLResponse:
        html = self.env.get_template("message.html.j2").render(
            title=title, message=message, back=back, back_label=back_label)
        return HTMLResponse(html, status_code=status)

    def refused(self, message: str, back: str | None) -> HTMLResponse:
        return self.problem(409, "Not done", _sentence(message), back=back)

    def forbidden_form(self, back: str) -> HTMLResponse:
        return self.problem(
            403, "Form expired",
            "This form could not be checked, so nothing was changed. Open the page again "
            "from the link in your mail and send the form from there.",
            back=back, back_label="Open the page again")

    def claim(self, token: str, purpose: str) -> Claim | HTMLResponse:
        """The token's claim, or the 404/410 page a person can act on."""
        try:
            return self.runtime.tokens.verify(token, purpose, self.now())
        except InvalidToken as exc:
            if exc.code == "expired_token":
                return self.problem(
                    410, "Link expired",
                    "This link has expired. Use the link in a newer mail about the same "
                    "ticket or order, or simply reply to that mail.")
            return self.problem(
                404, "Link not valid",
                "This link is not valid. Check that it was copied whole from the mail, or "
                "reply to the mail instead.")

    def sign_ticket_page(self, number: int, claim: Claim) -> str:
        """A ticket page for the same party, valid as long as the link that led here."""
        expires = claim.expires_at or link_expiry(self.now(), self.runtime.settings.link_ttl_days)
        return "/t/" + self.runtime.tokens.sign("ticket", number, claim.party, expires)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Database work runs in a worker thread: the event loop never blocks on it."""
        return await anyio.to_thread.run_sync(func, *args)


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
    return web.problem(413, "Too long",
                       "That text is too long for the page. Send it by replying to the mail "
                       "instead; long messages and attachments are welcome there.")


async def checked_form(web: Web, request: Request) -> dict[str, str] | Response:
    """A posted form whose CSRF token checks out, or the page that says why not."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        return too_large(web)
    if not web.csrf.check(request, form):
        return web.forbidden_form(request.url.path)
    return form
