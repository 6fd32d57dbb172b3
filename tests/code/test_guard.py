"""serving/guard.py in-process, as an ASGI app: auth, routes, content type, body size and read time, replay,
concurrency."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from serving.guard import RequestGuard
from serving.settings import Settings


class App:
    """The wrapped application: records what reached it and echoes the body it read."""

    def __init__(self):
        self.seen = []

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def call(guard, path="/predict", method="POST", headers=(), chunks=(b"{}",)):
    """(status, decoded JSON body or raw bytes) of one request through ``guard``."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": method,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if status != 200 else body)


JSON = [("content-type", "application/json")]


ROUTES = {"/predict": "POST", "/metadata": "POST", "/livez": "GET", "/docs": "GET", "/": "GET"}


def guard(app=None, **settings):
    return RequestGuard(app or App(), routes=ROUTES, json_routes=("/predict",), settings=Settings(**settings))


def test_without_a_key_everything_passes_and_json_routes_need_json():
    app = App()
    g = guard(app)
    assert call(g, headers=JSON + [("content-length", "2")]) == (200, b"{}")
    status, body = call(g, headers=[("content-type", "text/plain")])
    assert status == 415 and "application/json" in body["error"]
    assert call(g, path="/metadata", headers=[("content-type", "text/plain")]) == (200, b"{}")  # not a JSON route
    assert [p for p, _ in app.seen] == ["/predict", "/metadata"]


def test_unknown_paths_and_methods_are_refused_before_the_app_sees_them():
    app = App()
    g = guard(app)
    status, body = call(g, path="/x/../../etc/passwd", method="GET")
    assert status == 404 and "passwd" not in body["error"]  # the client's path is not echoed
    status, body = call(g, path="/predict", method="GET")
    assert status == 405 and "POST" in body["error"]
    assert call(g, path="/livez", method="HEAD")[0] == 200  # GET routes answer HEAD too
    assert [p for p, _ in app.seen] == ["/livez"]


def test_without_the_key_every_path_is_401_before_its_route_is_looked_up():
    app = App()
    g = guard(app, api_key="s3cret")
    assert call(g, path="/no/such/route", method="GET")[0] == 401
    assert call(g, path="/no/such/route", method="GET", headers=[("x-api-key", "s3cret")])[0] == 404
    assert app.seen == []


def test_a_body_that_trickles_past_the_deadline_is_408_and_the_connection_closes():
    app = App()
    g = guard(app, body_timeout_s=0.2)
    sent = []

    async def trickle():
        await asyncio.sleep(0.1)
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/predict", "method": "POST",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]}
    asyncio.run(g(scope, trickle, send))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert app.seen == []


def test_concurrency_limit_counts_only_requests_whose_body_has_arrived():
    release = asyncio.Event()

    class Slow(App):
        async def __call__(self, scope, receive, send):
            await release.wait()
            await super().__call__(scope, receive, send)

    g = guard(Slow(), max_concurrency=1, body_timeout_s=5)

    async def go():
        statuses = []

        async def request(receive):
            sent = []

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "path": "/predict", "method": "POST",
                     "headers": [(b"content-type", b"application/json")]}
            await g(scope, receive, send)
            statuses.append(sent[0]["status"] if sent else "gone")  # a client that left gets no answer

        stuck = asyncio.Event()

        async def never():  # a client that sent its headers and then nothing
            await stuck.wait()
            return {"type": "http.disconnect"}

        async def whole():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        slow = [asyncio.ensure_future(request(never)) for _ in range(5)]
        first = asyncio.ensure_future(request(whole))  # five trickling clients do not hold its place
        await asyncio.sleep(0.05)
        await request(whole)  # the one place is taken by `first`
        release.set()
        await first
        stuck.set()
        await asyncio.gather(*slow)
        return statuses

    assert asyncio.run(go()) == [429, 200] + ["gone"] * 5


@pytest.mark.parametrize("headers, status", [
    ([], 401), ([("x-api-key", "wrong")], 401), ([("authorization", "Bearer s3cret")], 200),
    ([("x-api-key", "s3cret")], 200),
    ([("authorization", "Basic " + base64.b64encode(b"labelstudio:s3cret").decode())], 200),
    ([("authorization", "Basic !!not-base64")], 401),
])
def test_api_key_is_required_except_on_probes(headers, status):
    g = guard(api_key="s3cret")
    got, body = call(g, headers=JSON + headers)
    assert got == status
    if status == 401:
        assert "s3cret" not in json.dumps(body)  # the key is never echoed
    assert call(g, path="/livez", method="GET")[0] == 200


def test_declared_and_chunked_bodies_over_the_limit_are_413_before_the_app_reads_them():
    app = App()
    g = guard(app, max_body_bytes=10)
    assert call(g, headers=JSON + [("content-length", "11")], chunks=(b"x" * 11,))[0] == 413
    assert call(g, headers=JSON + [("content-length", "ten")])[0] == 413
    assert call(g, headers=JSON, chunks=(b"12345", b"67890", b"1"))[0] == 413  # chunked: counted as it arrives
    assert app.seen == []
    # a chunked body within the limit is read once and replayed whole to the app
    assert call(g, headers=JSON, chunks=(b'{"a"', b": 1}")) == (200, b'{"a": 1}')


def test_docs_path_is_served_by_the_swagger_route():
    app = App()
    call(guard(app), path="/docs", method="GET")
    assert app.seen[0][0] == "/"
