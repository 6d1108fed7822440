"""The workplace's account pages: a vendor's standing and settings; for staff the vendor
list, each vendor's standing, settings and right to answer, and the review queue.

A vendor reaches its own (`/w/standing`, `/w/settings`); staff reach any vendor's under
`/w/vendors/NICK`. Staff pages answer a vendor 404, as pages that do not exist.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.domain.errors import NotFound, UserError
from gateway.domain.locales import LOCALES
from gateway.domain.texts import _
from gateway.services import standing, vendors, workplace, workplace_actions
from gateway.services.runtime import Runtime
from gateway.services.signin import Who
from web.pages import Web, checked_form
from web.workplace import actor_of, number_param, show, signed_in

ZONES = tuple(sorted(available_timezones()))
_SAVED = {"settings": _("Your settings are saved."),
          "restored": _("The right to answer is restored."),
          "revoked": _("The right to answer is revoked.")}


def _nickname(who: Who, request: Request) -> str:
    """The vendor a page is about: the signed-in vendor itself, or the one staff named."""
    if who.staff:
        return str(request.path_params.get("nick", ""))
    if "nick" in request.path_params:
        raise NotFound("staff pages only")
    return who.nickname or ""


def _staff_only(who: Who) -> None:
    if not who.staff:
        raise NotFound("staff pages only")


def _standing(runtime: Runtime, nickname: str) -> dict[str, Any]:
    with runtime.sessions() as session:
        vendor = vendors.find_vendor(session, nickname)
        return {"standing": standing.standing(session, runtime.context(), vendor),
                "vendor": vendor}


def _settings(runtime: Runtime, nickname: str) -> dict[str, Any]:
    with runtime.sessions() as session:
        return {"vendor": vendors.find_vendor(session, nickname), "zones": ZONES,
                "locales": LOCALES}


def _save(runtime: Runtime, who: Who, nickname: str, form: dict[str, str]) -> None:
    values = workplace_actions.VendorSettings(
        cs_email=form.get("cs_email", ""), timezone=form.get("timezone", ""),
        locale=form.get("locale", ""), partial_refunds=form.get("partial_refunds") == "on",
        contact_phone=form.get("contact_phone", ""), contact_site=form.get("contact_site", ""),
        contact_hours=form.get("contact_hours", ""))
    with runtime.sessions.begin() as session:
        workplace_actions.update_settings(session, runtime.context(), actor_of(who), nickname,
                                          values)


def _right(runtime: Runtime, who: Who, nickname: str, allowed: bool) -> None:
    with runtime.sessions.begin() as session:
        workplace_actions.set_right(session, runtime.context(), actor_of(who), nickname, allowed)


def _vendors(runtime: Runtime, text: str, page: int) -> workplace.Page[workplace.VendorLine]:
    with runtime.sessions() as session:
        return workplace.list_vendors(session, text, page)


def _review(runtime: Runtime, everything: bool, page: int
            ) -> workplace.Page[workplace.ReviewLine]:
    with runtime.sessions() as session:
        return workplace.review_queue(session, include_reviewed=everything, page=page)


def _reviewed(runtime: Runtime, who: Who, event_id: int) -> None:
    with runtime.sessions.begin() as session:
        workplace_actions.mark_reviewed(session, runtime.context(), event_id, who.address)


def routes(web: Web) -> list[Route]:
    rt = web.runtime

    async def standing_page(request: Request, who: Who) -> Response:
        nickname = _nickname(who, request)
        context = await web.run(_standing, rt, nickname)
        saved = _SAVED.get(request.query_params.get("done", ""))
        return show(web, request, who, "workplace/standing.html.j2", {**context, "done": saved},
                    "vendors" if who.staff else "standing")

    async def settings_page(request: Request, who: Who) -> Response:
        nickname = _nickname(who, request)
        back = f"/w/vendors/{nickname}/settings" if who.staff else "/w/settings"
        if request.method == "POST":
            form = await checked_form(web, request)
            if isinstance(form, Response):
                return form
            try:
                await web.run(_save, rt, who, nickname, form)
            except UserError as exc:
                if isinstance(exc, NotFound):
                    raise
                return web.refused(exc.message, back, locale=who.locale)
            return RedirectResponse(f"{back}?done=settings", 303)
        context = await web.run(_settings, rt, nickname)
        saved = _SAVED.get(request.query_params.get("done", ""))
        return show(web, request, who, "workplace/settings.html.j2", {**context, "done": saved},
                    "vendors" if who.staff else "settings")

    async def right(request: Request, who: Who) -> Response:
        _staff_only(who)
        nickname = str(request.path_params["nick"])
        form = await checked_form(web, request)
        if isinstance(form, Response):
            return form
        allowed = form.get("allowed") == "1"
        await web.run(_right, rt, who, nickname, allowed)
        done = "restored" if allowed else "revoked"
        return RedirectResponse(f"/w/vendors/{nickname}?done={done}", 303)

    async def vendor_list(request: Request, who: Who) -> Response:
        _staff_only(who)
        params = dict(request.query_params)
        found = await web.run(_vendors, rt, params.get("q", ""), number_param(request, "page"))
        return show(web, request, who, "workplace/vendors.html.j2",
                    {"found": found, "params": params}, "vendors")

    async def review(request: Request, who: Who) -> Response:
        _staff_only(who)
        params = dict(request.query_params)
        if request.method == "POST":
            form = await checked_form(web, request)
            if isinstance(form, Response):
                return form
            event_id = form.get("event", "")
            if event_id.isdigit():
                await web.run(_reviewed, rt, who, int(event_id))
            return RedirectResponse(request.url.path + (
                f"?{request.url.query}" if request.url.query else ""), 303)
        found = await web.run(_review, rt, params.get("all") == "1",
                              number_param(request, "page"))
        return show(web, request, who, "workplace/review.html.j2",
                    {"found": found, "params": params}, "review")

    return [
        Route("/w/standing", signed_in(web, standing_page), methods=["GET"]),
        Route("/w/settings", signed_in(web, settings_page), methods=["GET", "POST"]),
        Route("/w/vendors", signed_in(web, vendor_list), methods=["GET"]),
        Route("/w/vendors/{nick}", signed_in(web, standing_page), methods=["GET"]),
        Route("/w/vendors/{nick}/settings", signed_in(web, settings_page),
              methods=["GET", "POST"]),
        Route("/w/vendors/{nick}/right", signed_in(web, right), methods=["POST"]),
        Route("/w/review", signed_in(web, review), methods=["GET", "POST"]),
    ]
