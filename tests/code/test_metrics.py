"""serving/metrics.py behind serving/guard.py, in-process: series are per route, never per path a client sent."""

from __future__ import annotations

import asyncio
import uuid

from serving.guard import RequestGuard
from serving.metrics import OTHER, TrafficMetrics, route_label
from serving.settings import Settings

ROUTES = {"/predict": "POST", "/livez": "GET", "/metrics": "GET"}


async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _get(app, path: str, headers=()) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": path, "headers": list(headers)}, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_route_label_is_a_route_a_static_prefix_or_other():
    assert route_label("/predict", ROUTES) == "/predict"
    assert route_label("/static_content/x.js", ROUTES, ("/static_content/",)) == "/static_content/"
    assert route_label("/predict/../../etc", ROUTES) == OTHER


def test_random_paths_add_no_series_with_or_without_a_key():
    for key in (None, "k3y"):
        app = RequestGuard(TrafficMetrics(_ok, routes=ROUTES), routes=ROUTES, settings=Settings(api_key=key))
        auth = [(b"x-api-key", b"k3y")] if key else []
        _get(app, "/livez")
        before = _get(app, "/metrics", auth)[1]
        for _ in range(300):
            path = f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}"
            assert _get(app, path)[0] == (401 if key else 404)
            assert path.encode() not in _get(app, "/metrics", auth)[1]
        after = _get(app, "/metrics", auth)[1]
        series = lambda text: {line.rsplit(" ", 1)[0] for line in text.decode().splitlines() if not line.startswith("#")}
        new = series(after) - series(before)
        assert all("framing_rejected_requests" in s or "/metrics" in s for s in new), new  # counted by reason
        assert abs(len(after) - len(before)) < 2000  # a few counters moved; nothing grew with the paths
