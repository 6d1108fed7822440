"""The REST API of a vendor's reply templates and signature (`/api/v1/vendors/NICK/...`).

A vendor key reaches its own vendor only (another's answers 404, as if it did not exist);
a staff key reaches every vendor. A text that would fail in a reply is refused with 422 and
the line and reason (`gateway.services.vendor_texts`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.domain.errors import NotFound
from gateway.services import vendor_texts
from gateway.services.apikeys import Principal
from gateway.services.runtime import Runtime
from gateway.services.vendors import find_vendor
from web.api_input import only, read_object, text_field

Handler = Callable[[Request, Principal], Awaitable[Response]]
Run = Callable[..., Awaitable[Any]]


def _nick(who: Principal, nickname: str) -> str:
    nick = nickname.strip().lower()
    if not who.staff and nick != who.vendor_nickname:
        raise NotFound(f"no vendor {nickname!r}")
    return nick


def list_templates(rt: Runtime, who: Principal, nickname: str) -> dict[str, Any]:
    with rt.sessions() as session:
        found = vendor_texts.list_templates(session, _nick(who, nickname))
        return {"items": [vendor_texts.template_view(t, body=False) for t in found]}


def show_template(rt: Runtime, who: Principal, nickname: str, name: str) -> dict[str, Any]:
    with rt.sessions() as session:
        return vendor_texts.template_view(
            vendor_texts.find_template(session, _nick(who, nickname), name))


def put_template(rt: Runtime, who: Principal, nickname: str, name: str,
                 body: str) -> tuple[dict[str, Any], bool]:
    with rt.sessions.begin() as session:
        saved, created = vendor_texts.save_template(session, rt.context(), who.actor(),
                                                    _nick(who, nickname), name, body)
        return vendor_texts.template_view(saved), created


def delete_template(rt: Runtime, who: Principal, nickname: str, name: str) -> None:
    with rt.sessions.begin() as session:
        vendor_texts.remove_template(session, rt.context(), who.actor(), _nick(who, nickname),
                                     name)


def signature(rt: Runtime, who: Principal, nickname: str, text: str | None,
              change: bool) -> dict[str, Any]:
    """The vendor's signature; set (None: cleared) when `change`."""
    if not change:
        with rt.sessions() as session:
            return {"signature": find_vendor(session, _nick(who, nickname)).signature}
    with rt.sessions.begin() as session:
        vendor = vendor_texts.set_signature(session, rt.context(), who.actor(),
                                            _nick(who, nickname), text)
        return {"signature": vendor.signature}


def handlers(runtime: Runtime, run: Run) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of each call; `run` runs database work off the event loop."""

    async def templates(request: Request, who: Principal) -> Response:
        return JSONResponse(await run(list_templates, runtime, who,
                                      request.path_params["nickname"]))

    async def one(request: Request, who: Principal) -> Response:
        nick, name = request.path_params["nickname"], request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(await run(show_template, runtime, who, nick, name))
        if request.method == "DELETE":
            await run(delete_template, runtime, who, nick, name)
            return Response(status_code=204)
        body = await read_object(request)
        only(body, ("body",))
        text = text_field(body, "body", required=True)
        assert text is not None
        view, created = await run(put_template, runtime, who, nick, name, text)
        return JSONResponse(view, status_code=201 if created else 200)

    async def sign(request: Request, who: Principal) -> Response:
        nick = request.path_params["nickname"]
        text: str | None = None
        if request.method == "PUT":
            body = await read_object(request)
            only(body, ("text",))
            text = text_field(body, "text", required=True)
        return JSONResponse(await run(signature, runtime, who, nick, text,
                                      request.method != "GET"))

    return [
        ("GET", "/vendors/{nickname}/templates", templates),
        ("GET", "/vendors/{nickname}/templates/{name}", one),
        ("PUT", "/vendors/{nickname}/templates/{name}", one),
        ("DELETE", "/vendors/{nickname}/templates/{name}", one),
        ("GET", "/vendors/{nickname}/signature", sign),
        ("PUT", "/vendors/{nickname}/signature", sign),
        ("DELETE", "/vendors/{nickname}/signature", sign),
    ]
