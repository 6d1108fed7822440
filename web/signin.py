"""Signing in to the workplace (`/signin`): ask for a link, follow it, sign out; and the
session cookie every workplace page reads.

`GET /signin` asks for an address; `POST /signin` mails a link to it when it belongs to a
vendor or to staff, and answers the same page whether or not it does (CONTRACT). The link,
`/signin/TOKEN`, shows one button: mail scanners open every link in a mail, so only the POST
that button sends spends it. A session cookie follows: `HttpOnly`, `SameSite=Lax`, `Secure`
when TICKETGW_BASE_URL is https, naming a server-side session that sign-out ends.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.domain.errors import UserError
from gateway.domain.texts import _
from gateway.domain.tokens import Claim, InvalidToken
from gateway.services import signin
from gateway.services.runtime import Runtime
from gateway.services.signin import IssuedLink, Who
from web.pages import Web, checked_form

SESSION_COOKIE = "ticketgw_session"
NEXT_COOKIE = "ticketgw_next"  # the workplace page asked for before signing in
HOME = "/w/tickets"


def _secure(web: Web) -> bool:
    return web.runtime.settings.base_url.strip().lower().startswith("https://")


def _current(runtime: Runtime, claim: Claim, now: datetime) -> Who | None:
    with runtime.sessions() as session:
        return signin.current(session, claim, now)


async def who_of(web: Web, request: Request) -> Who | None:
    """The signed-in person of this request, or None (no cookie, a forged, expired or ended
    session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        claim = web.runtime.tokens.verify(token, "session", web.now())
    except InvalidToken:
        return None
    return await web.run(_current, web.runtime, claim, web.now())


def ask_to_sign_in(web: Web, request: Request) -> Response:
    """Off to the sign-in page; a page that was asked for (GET) is where signing in ends."""
    response = RedirectResponse("/signin", 303)
    if request.method == "GET":
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response.set_cookie(NEXT_COOKIE, wanted, max_age=3600, httponly=True, samesite="lax",
                            secure=_secure(web), path="/")
    return response


def _landing(request: Request) -> str:
    wanted = request.cookies.get(NEXT_COOKIE, "")
    # only a workplace page of ours: never an address elsewhere (an open redirect)
    if wanted.startswith("/w/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return HOME


def _ask(runtime: Runtime, address: str) -> None:
    with runtime.sessions.begin() as session:
        signin.request_links(session, runtime.context(), address)


def _preview(runtime: Runtime, claim: Claim, now: datetime) -> IssuedLink:
    with runtime.sessions() as session:
        return signin.preview(session, claim, now)


def _use(runtime: Runtime, claim: Claim) -> Who:
    with runtime.sessions.begin() as session:
        return signin.use_link(session, runtime.context(), claim)


def _end(runtime: Runtime, who: Who) -> None:
    with runtime.sessions.begin() as session:
        signin.sign_out(session, runtime.clock.now(), who.session_id)


def _link_refused(web: Web, exc: UserError) -> Response:
    if exc.code in ("expired_token", "link_used"):
        return web.problem(
            410, _("Link used") if exc.code == "link_used" else _("Link expired"),
            _("This sign-in link cannot be used any more: each link works once, within 15 "
              "minutes. Ask for a new one."),
            back="/signin", back_label=_("Ask for a new sign-in link"))
    return web.problem(404, _("Link not valid"), _(
        "This sign-in link is not valid. Check that it was copied whole from the mail, or ask "
        "for a new one."), back="/signin", back_label=_("Ask for a new sign-in link"))


def routes(web: Web) -> list[Route]:
    async def ask_page(request: Request) -> Response:
        if await who_of(web, request) is not None:
            return RedirectResponse(_landing(request), 303)
        done = request.query_params.get("done")
        return web.page(request, "workplace/signin.html.j2", {"done": done})

    async def ask(request: Request) -> Response:
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        address = form.get("email", "").strip()[:320]
        await web.run(_ask, web.runtime, address)
        return web.page(request, "workplace/signin_sent.html.j2", {"address": address})

    def claim_of(request: Request) -> Claim | Response:
        try:
            return web.runtime.tokens.verify(request.path_params["token"], "signin", web.now())
        except InvalidToken as exc:
            return _link_refused(web, exc)

    async def link_page(request: Request) -> Response:
        claim = claim_of(request)
        if isinstance(claim, Response):
            return claim
        try:
            link = await web.run(_preview, web.runtime, claim, web.now())
        except UserError as exc:
            return _link_refused(web, exc)
        return web.page(request, "workplace/signin_link.html.j2", {"link": link})

    async def use(request: Request) -> Response:
        claim = claim_of(request)
        if isinstance(claim, Response):
            return claim
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        try:
            who = await web.run(_use, web.runtime, claim)
        except UserError as exc:
            return _link_refused(web, exc)
        response = RedirectResponse(_landing(request), 303)
        token = web.runtime.tokens.sign("session", who.session_id, who.party, who.expires_at)
        max_age = max(int((who.expires_at - web.now()).total_seconds()), 0)
        response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True,
                            samesite="lax", secure=_secure(web), path="/")
        response.delete_cookie(NEXT_COOKIE, path="/")
        return response

    async def sign_out(request: Request) -> Response:
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        who = await who_of(web, request)
        if who is not None:
            await web.run(_end, web.runtime, who)
        response = RedirectResponse("/signin?done=out", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=_secure(web))
        return response

    return [Route("/signin", ask_page, methods=["GET"]),
            Route("/signin", ask, methods=["POST"]),
            Route("/signin/{token}", link_page, methods=["GET"]),
            Route("/signin/{token}", use, methods=["POST"]),
            Route("/signout", sign_out, methods=["POST"])]
