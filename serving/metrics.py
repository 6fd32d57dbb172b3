"""Prometheus metrics of the service, labelled by route, never by the path a client sent; and GET /metrics.

BentoML's own traffic metrics (switched off in the service config) label every series with
the raw URL path, and record it before any middleware of ours runs: each distinct path a
client invents adds series for good (in the multiprocess files too), so random paths grew a
worker by 1.5 GB and made /metrics time out. Here the ``endpoint`` label is one of the
service's routes, or ``[other]``; requests reach this middleware only after the request guard
has authenticated them and matched their route, so an unauthenticated client adds nothing.
Rejections by the guard are counted by reason (a fixed set) in ``framing_rejected_requests_total``.

The metric names and labels are BentoML's (``bentoml_service_request_total`` and so on),
so dashboards built on them keep working. User metrics made with ``prometheus_client`` in the
worker appear in /metrics too (multiprocess mode, as BentoML sets it up).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any, Callable, Collection

Scope = dict[str, Any]
OTHER = "[other]"
NAMESPACE = "bentoml_service"


@lru_cache(maxsize=1)
def _metrics() -> dict[str, Any]:
    # Created once per process, on first use: by then BentoML has set PROMETHEUS_MULTIPROC_DIR.
    import prometheus_client as pc

    labels = ["endpoint", "http_response_code"]
    return {
        "total": pc.Counter("request_total", "Requests answered, by route and status", labels, namespace=NAMESPACE),
        "duration": pc.Histogram("request_duration_seconds", "Time to answer a request, by route and status", labels,
                                 namespace=NAMESPACE,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)),
        "in_progress": pc.Gauge("request_in_progress", "Requests being answered now, by route", ["endpoint"],
                                namespace=NAMESPACE, multiprocess_mode="livesum"),
        "rejected": pc.Counter("framing_rejected_requests_total", "Requests the guard refused, by reason", ["reason"]),
    }


def count_rejection(reason: str) -> None:
    """One more request refused for ``reason`` (a fixed word such as ``auth`` or ``body_timeout``)."""
    _metrics()["rejected"].labels(reason=reason).inc()


def exposition() -> tuple[bytes, str]:
    """(body, content type) of GET /metrics: every worker's metrics when BentoML runs several."""
    import prometheus_client as pc
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = pc.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = pc.REGISTRY
    return pc.generate_latest(registry), pc.CONTENT_TYPE_LATEST


def route_label(path: str, routes: Collection[str], prefixes: Collection[str] = ()) -> str:
    """The ``endpoint`` label of ``path``: itself when it is a route, the prefix of a static-file route, else ``[other]``."""
    if path in routes:
        return path
    return next((p for p in prefixes if path.startswith(p)), OTHER)


class TrafficMetrics:
    """ASGI middleware: counts and times every request by route and status, and answers GET /metrics."""

    def __init__(self, app, routes: Collection[str] = (), prefixes: Collection[str] = ()):
        self.app = app
        self.routes = frozenset(routes)
        self.prefixes = tuple(prefixes)
        self.metrics = _metrics()

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/metrics" and scope.get("method") in ("GET", "HEAD"):
            return await self._expose(scope, send)
        endpoint = route_label(scope["path"], self.routes, self.prefixes)
        status = 500  # if the app raises before answering, that is what the client sees
        start = time.perf_counter()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = self.metrics["in_progress"].labels(endpoint=endpoint)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            in_progress.dec()
            self.metrics["total"].labels(endpoint=endpoint, http_response_code=status).inc()
            self.metrics["duration"].labels(endpoint=endpoint, http_response_code=status).observe(
                time.perf_counter() - start)

    async def _expose(self, scope: Scope, send: Callable) -> None:
        import anyio

        body, ctype = await anyio.to_thread.run_sync(exposition)  # reading the multiprocess files blocks
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})
