"""ASGI middleware in front of the service: API key, routes, body size and read time, content type,
concurrency, /docs.

In this order, each check before anything of the next is done, so a bad client cannot make the
model process do work or the service store anything about it:

1. the API key (401), on every path but the health checks;
2. the route (404 for a path the service does not have, 405 for a method it does not take);
3. for a POST: JSON content type (415), the declared length (413), then the whole body is read,
   at most ``max_body_bytes`` (413) within ``body_timeout_s`` of the headers (408, and the
   connection is closed): a client trickling a body holds a connection for that long at most,
   and never a place among the requests being answered;
4. the concurrency limit (429), counting only requests whose body has arrived.

Rejections are JSON ``{"error": "..."}`` and one rate-limited log line each (``serving.rejections``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from typing import Any, Awaitable, Callable, Mapping

from serving import metrics, rejections
from serving.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

OPEN_PATHS = ("/livez", "/readyz", "/healthz")
UNLIMITED_PATHS = (*OPEN_PATHS, "/metrics")  # answered however busy the service is
# BentoML's own routes: health checks, metrics, the OpenAPI spec and its Swagger UI with its files.
INFRA_ROUTES = {"/livez": "GET", "/readyz": "GET", "/healthz": "GET", "/metrics": "GET", "/docs.json": "GET",
                "/schema.json": "GET", "/": "GET", "/docs": "GET", "/docs/": "GET"}
STATIC_PREFIXES = ("/static_content/",)


class RequestGuard:
    def __init__(self, app, routes: Mapping[str, str], json_routes: tuple[str, ...] = (),
                 settings: Settings | None = None, prefixes: tuple[str, ...] = STATIC_PREFIXES):
        """``routes``: path → its method (GET also allows HEAD); ``prefixes``: GET-only static file trees."""
        self.app = app
        # Read once, when the server builds its middleware stack; the key is never logged or echoed.
        settings = settings or Settings.from_env()
        self.api_key = settings.api_key
        self.max_body_bytes = settings.max_body_bytes
        self.body_timeout_s = settings.body_timeout_s
        self.max_concurrency = settings.max_concurrency
        self.routes = {path: ({"GET", "HEAD"} if method == "GET" else {method}) for path, method in routes.items()}
        self.prefixes = prefixes
        self.json_routes = json_routes
        self.active = 0  # requests past every check, being answered now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}

        known = path in self.routes  # only a known route is ever logged: any other path is the client's string
        shown_method, shown_path = (method if method in _METHODS else "-"), (path if known else "-")
        if self.api_key and path not in OPEN_PATHS and not self._authorised(headers):
            return await _reject(send, 401, "auth", shown_method, shown_path, "missing or wrong API key: send 'Authorization: Bearer "
                                 "<key>', 'X-API-Key: <key>' or basic auth with the key as password",
                                 {"www-authenticate": "Bearer"})
        allowed = self.routes.get(path) or ({"GET", "HEAD"} if path.startswith(self.prefixes) else None)
        if allowed is None:
            return await _reject(send, 404, "no_route", shown_method, "-", "no such route; see /docs for the API")
        if method not in allowed:
            return await _reject(send, 405, "method", shown_method, shown_path, f"{path} takes {' or '.join(sorted(allowed))}",
                                 {"allow": ", ".join(sorted(allowed))})
        if path in ("/docs", "/docs/"):  # BentoML serves its Swagger UI at "/"; offer the usual address too
            scope = {**scope, "path": "/", "raw_path": b"/"}

        if method == "POST":
            if path in self.json_routes:
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    return await _reject(send, 415, "content_type", method, path,
                                         f"content type must be application/json, got {ctype or 'none'!r}")
            too_large = f"request body over the limit of {self.max_body_bytes} bytes"
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                return await _reject(send, 413, "body_size", method, path, too_large, close=True)
            try:
                body = await self._read_body(receive)
            except TimeoutError:
                return await _reject(send, 408, "body_timeout", method, path,
                                     f"request body not received within {self.body_timeout_s:g} s", close=True)
            except _TooLarge:
                return await _reject(send, 413, "body_size", method, path, too_large, close=True)
            if body is None:  # the client went away mid-body: nobody to answer
                return
            receive = _replay(body, receive)

        if self.active >= self.max_concurrency and path not in UNLIMITED_PATHS:
            return await _reject(send, 429, "busy", method, path, "too many requests being answered; retry shortly",
                                 {"retry-after": "1"})
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    def _authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key") or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif auth.lower().startswith("basic "):  # Label Studio's ML-backend connection offers basic auth
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                given = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")[2]
        return bool(given) and secrets.compare_digest(given.encode(), self.api_key.encode())

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, within the size and time limits (_TooLarge, TimeoutError); None if the client left."""
        chunks, size = [], 0
        async with asyncio.timeout(self.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _TooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)


class _TooLarge(Exception):
    pass


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()  # e.g. http.disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _reject(send: Send, status: int, reason: str, method: str, route: str, message: str,
                  extra: dict[str, str] | None = None, close: bool = False) -> None:
    """Answer ``status`` with ``{"error": message}``, log one line and count it; ``route`` is never a client's string."""
    rejections.record(status, method, route, reason)
    metrics.count_rejection(reason)
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
