"""The ASGI app: signed no-login ticket and receipt pages, one-click actions, health, metrics.

Routes (CONTRACT "HTTP"): `GET/POST /t/TOKEN` (a party's ticket page), `GET/POST /r/TOKEN`
with `/r/TOKEN/invoice` and `/r/TOKEN/download` (the customer's receipt page),
`GET/POST /a/confirm|dispute|to-refund/TOKEN` (one-click pages), `GET /f/TOKEN/NAME` (an
attachment, from a ticket page), `GET /healthz`,
`GET /metrics`; the workplace: `GET/POST /signin`, `/signin/TOKEN`, `POST /signout` and the
signed-in pages under `/w/`. A GET never changes anything; every POST carries a CSRF field.
The REST API lives under `/api/v1` (`api.py`) and answers errors in JSON, never as pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from gateway.domain.texts import _
from gateway.services.runtime import Runtime
from web import actions, api, files, ops, receipt, signin, ticket, workplace, workplace_account
from web.pages import SecurityHeaders, ViewerLanguage, Web

log = logging.getLogger("ticketgw.web")


def _in_api(request: Request) -> bool:
    return request.url.path == api.PREFIX or request.url.path.startswith(api.PREFIX + "/")


def create_app(runtime: Runtime, *, broker_check: Callable[[], bool] | None = None,
               health_checks: Callable[[], bool] | None = None,
               api_rate: api.RateLimit | None = None) -> Starlette:
    """The ASGI app. `broker_check` (alias `health_checks`) says whether the broker answers;
    `api_rate` is the REST API's per-key rate limit (default 600 requests a minute)."""
    web = Web(runtime, broker_check or health_checks or (lambda: True))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if _in_api(request):
            if status == 405:
                return api.error_response(405, "method_not_allowed",
                                          "this path does not take that method; see "
                                          f"{api.PREFIX}/openapi.json")
            return api.error_response(404, "not_found", "there is no such API path; see "
                                      f"{api.PREFIX}/openapi.json")
        if status == 405:
            return web.problem(405, _("Not allowed"), _("This page cannot be used that way. Open "
                               "the link from your mail in a browser."))
        return web.problem(status, _("Page not found"), _("There is no such page. Use the link "
                           "in your mail, or reply to the mail instead."))

    async def database_down(request: Request, exc: Exception) -> Response:
        log.warning("web: database unavailable", extra={"error": type(exc).__name__})
        if _in_api(request):
            return api.error_response(503, "unavailable", "the database is busy or being "
                                      "maintained, so nothing was changed; try again soon")
        return web.problem(503, _("Try again soon"), _("The service is busy or being "
                           "maintained, so nothing was changed. Please try again in a few "
                           "minutes."))

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("web: internal error", extra={"route": request.scope.get("route_name")})
        if _in_api(request):
            return api.error_response(500, "internal", "something went wrong and nothing was "
                                      "changed; try again later")
        return web.problem(500, _("Something went wrong"), _("Nothing was changed. Please try "
                           "again later, or reply to the mail instead."))

    return Starlette(
        routes=[*ticket.routes(web), *files.routes(web), *receipt.routes(web),
                *actions.routes(web), *signin.routes(web), *workplace.routes(web),
                *workplace_account.routes(web), *ops.routes(web), *api.routes(runtime, api_rate)],
        middleware=[Middleware(SecurityHeaders), Middleware(ViewerLanguage)],
        exception_handlers={HTTPException: http_error, OperationalError: database_down,
                            Exception: internal},
    )
