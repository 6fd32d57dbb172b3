"""ASGI middleware in front of the service: API key, body size, content type, /docs.

Rejections are JSON ``{"error": "..."}`` with a 4xx status, before any request
body is parsed, so a bad client cannot make the model process do work.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from typing import Any, Awaitable, Callable

from serving.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

OPEN_PATHS = ("/livez", "/readyz", "/healthz")


class RequestGuard:
    def __init__(self, app, json_routes: tuple[str, ...] = (), settings: Settings | None = None):
        self.app = app
        # Read once, when the server builds its middleware stack; the key is never logged or echoed.
        settings = settings or Settings.from_env()
        self.api_key = settings.api_key
        self.max_body_bytes = settings.max_body_bytes
        self.json_routes = json_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in ("/docs", "/docs/"):  # BentoML serves its Swagger UI at "/"; offer the usual address too
            scope = {**scope, "path": "/", "raw_path": b"/"}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}

        if self.api_key and path not in OPEN_PATHS and not self._authorised(headers):
            return await _reply(send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>', 'X-API-Key: <key>' "
                                "or basic auth with the key as password",
                                {"www-authenticate": "Bearer"})

        if scope.get("method") == "POST" and path in self.json_routes:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return await _reply(send, 415, f"content type must be application/json, got {ctype or 'none'!r}")
            length = headers.get("content-length")
            too_large = f"request body over the limit of {self.max_body_bytes} bytes"
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                return await _reply(send, 413, too_large)
            if length is None:  # chunked: read up to the limit here, then replay it to the app
                body = await self._read_limited(receive)
                if body is None:
                    return await _reply(send, 413, too_large)
                receive = _replay(body, receive)

        await self.app(scope, receive, send)

    def _authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key") or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif auth.lower().startswith("basic "):  # Label Studio's ML-backend connection offers basic auth
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                given = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")[2]
        return bool(given) and secrets.compare_digest(given.encode(), self.api_key.encode())

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it grows past the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()  # e.g. http.disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _reply(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
