"""A small OAuth2 provider for the tests: a token endpoint (RFC 6749 section 6, refresh) and an
introspection endpoint (RFC 7662) that Dovecot's oauth2 passdb asks, on a free loopback port."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID = "ticketgw-test"
CLIENT_SECRET = "client-s3cret"


@dataclass
class Provider:
    """What the endpoints know: refresh tokens and access tokens, each for one user."""

    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> (user, expires)
    lifetime: float = 3600.0
    rotate: bool = False  # answer each refresh with a new refresh token, the old one dies
    refreshes: list[str] = field(default_factory=list)  # the user of each granted refresh
    refused: list[str] = field(default_factory=list)  # the error of each refused one
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def grant(self, user: str) -> str:
        """A new refresh token for `user`."""
        token = "rt-" + secrets.token_urlsafe(16)
        with self.lock:
            self.refresh[token] = user
        return token

    def revoke(self, token: str) -> None:
        with self.lock:
            self.refresh.pop(token, None)

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access = {t: (u, 0.0) for t, (u, _e) in self.access.items()}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self.lock:
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                self.refused.append("invalid_client")
                return 401, {"error": "invalid_client"}
            user = self.refresh.get(form.get("refresh_token", ""))
            if form.get("grant_type") != "refresh_token" or user is None:
                self.refused.append("invalid_grant")
                return 400, {"error": "invalid_grant",
                             "error_description": "the refresh token was revoked"}
            access = "at-" + secrets.token_urlsafe(16)
            self.access[access] = (user, time.time() + self.lifetime)
            self.refreshes.append(user)
            answer: dict[str, object] = {"access_token": access, "token_type": "Bearer",
                                         "expires_in": int(self.lifetime)}
            if self.rotate:
                self.refresh.pop(form["refresh_token"])
                answer["refresh_token"] = new = "rt-" + secrets.token_urlsafe(16)
                self.refresh[new] = user
            return 200, answer

    def introspect(self, form: dict[str, str]) -> dict[str, object]:
        with self.lock:
            user, expires = self.access.get(form.get("token", ""), ("", 0.0))
        if not user or expires < time.time():
            return {"active": False}
        return {"active": True, "username": user}


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path == "/token":
                status, body = provider.token(form)
            elif self.path == "/introspect":
                status, body = 200, provider.introspect(form)
            else:
                status, body = 404, {"error": "not_found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return  # quiet: the test output is for the tests

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """The provider's endpoints served until the block ends (`provider.url` is their base)."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
