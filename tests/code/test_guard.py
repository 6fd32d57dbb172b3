"""serving/guard.py in-process, as an ASGI app: auth, content type, body limits and replay."""

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


def guard(app=None, **settings):
    return RequestGuard(app or App(), json_routes=("/predict",), settings=Settings(**settings))


def test_without_a_key_everything_passes_and_json_routes_need_json():
    app = App()
    g = guard(app)
    assert call(g, headers=JSON + [("content-length", "2")]) == (200, b"{}")
    status, body = call(g, headers=[("content-type", "text/plain")])
    assert status == 415 and "application/json" in body["error"]
    assert call(g, path="/metadata", method="GET") == (200, b"{}")  # not a JSON route: untouched
    assert [p for p, _ in app.seen] == ["/predict", "/metadata"]


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
