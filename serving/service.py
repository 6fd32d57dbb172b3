"""The prediction API: one thin BentoML service around the model's own ``predict``.

Everything the model knows (preprocessing, label names, thresholds) lives in the saved model;
this class only validates requests, batches them and shapes replies. Settings (limits, API
key, prediction log, which model) come from the environment when the service starts: see
``serving/settings.py`` for the table. The model is the Bento's own (alias ``framing-model``
in the build config that `framing package` writes), unless FRAMING_MODEL_TAG names another.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import threading
from datetime import datetime, timezone
from typing import Annotated, Any

import bentoml
from bentoml.validators import ContentType

from serving import http_protocol, label_metrics, labelstudio_backend, rejections
from serving.batching import MicroBatcher
from serving.guard import INFRA_ROUTES, RequestGuard
from serving.metrics import TrafficMetrics
from serving.openapi import PublishedSpec
from serving.requests import texts_type
from serving.settings import SERVICE_NAME, Settings

# The limits are part of the published request schema, which BentoML builds when this module
# loads (at service start): they are read here, everything else in the constructor. The header
# timeout must be in place before the worker's uvicorn loads its config, which follows this import.
_LIMITS = Settings.from_env()
http_protocol.install(_LIMITS.header_timeout_s)

# Validation errors come back as 400 {"error": ..., "detail": [{"type", "loc": ["texts", i], "msg"}]},
# the same shape as every other malformed request; the limits also appear in the OpenAPI schema.
Texts = texts_type(_LIMITS.max_text_chars, _LIMITS.max_batch)


# A declared content type spares BentoML from rebuilding the output's JSON schema on
# every response just to choose one (~10% of a worker's time under load).
JSONObject = Annotated[dict[str, Any], ContentType("application/json")]


class PredictionLog:
    """Append-only JSONL sink for monitoring; one line per text (no raw text, only its length and hash)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def write(self, texts: list[str], results: list[dict], model: dict) -> None:
        now = datetime.now(timezone.utc).isoformat()
        lines = [json.dumps({"time": now, "model": model, "text_sha256": hashlib.sha256(t.encode()).hexdigest()[:16],
                             "chars": len(t), **r}, ensure_ascii=False) for t, r in zip(texts, results)]
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


@bentoml.asgi_app(labelstudio_backend.create_app(_LIMITS.max_text_chars), path=labelstudio_backend.PREFIX)
@bentoml.service(
    name=SERVICE_NAME,
    # One worker with one event loop: the model call runs in an executor thread while the loop
    # keeps parsing requests, and micro-batching turns concurrency into batch size. See
    # bench/RESULTS.md for why not more workers on 2 cores. `framing serve` overrides workers,
    # the access log and tracing from FRAMING_WORKERS, FRAMING_ACCESS_LOG and FRAMING_TRACING.
    workers=1,
    # No max_concurrency: BentoML's counts connections still sending their body, so slow clients
    # could fill it; the request guard limits requests once their body is in (FRAMING_MAX_CONCURRENCY).
    # The 30 s timeout (504) cannot be switched off; it holds each request's context for 30 s
    # (~0.5 KB), which is why tracing is off below: a span each made that ~3.5 KB (bench/RESULTS.md).
    traffic={"timeout": 30},
    # BentoML's traffic metrics label series by raw URL path, before any check (unbounded memory
    # under random paths): serving/metrics.py records them by route, behind the guard, instead.
    metrics={"enabled": False},
    # Per-request OpenTelemetry spans (with no exporter configured) and access-log lines
    # cost ~20% of a worker's time under load (bench/RESULTS.md): off unless asked for, on
    # every route ("." matches any URL), FRAMING_TRACING turns them on.
    tracing={"excluded_urls": ["."]},
    logging={"access": {"enabled": False}},
)
class FramingClassifier:
    def __init__(self) -> None:
        from pipeline.labelstudio.prediction import Labels
        from pipeline.model import FramingModel

        self.settings = Settings.from_env()
        rejections.configure(self.settings.rejection_log_rate)
        logging.getLogger(rejections.BENTOML_HTTP_LOGGER).addFilter(rejections.QuietRejections())
        self.bento_model = bentoml.models.get(self.settings.model_tag)
        self.model = FramingModel.load(self.bento_model.path_of("model.pkl"))
        info = self.bento_model.info
        self.model_info = {"name": self.model.name, "tag": str(info.tag),
                           "version": info.labels.get("mlflow_version", str(info.tag.version)),
                           "registered_as": info.labels.get("mlflow_model", str(info.tag.name))}
        self.labels = Labels.of_model(self.model)
        self.metadata_doc = self._metadata()
        self.batcher = MicroBatcher(self.model.predict, max_batch=64)
        log_path = self.settings.prediction_log
        self.prediction_log = PredictionLog(log_path) if log_path else None
        # Full (generation 2) collections walk every object the imports and the model
        # created: tens of ms each, seen as p99 stalls even at concurrency 1. Freezing the
        # start-up heap takes it out of the collector's view (bench/RESULTS.md).
        gc.collect()
        gc.freeze()

    def _metadata(self) -> dict[str, Any]:
        info = self.bento_model.info
        custom = dict(info.metadata or {})
        described = self.model.describe()
        return {
            "model": self.model_info,
            "labels": custom.get("labels", {}),
            "frame_names": described["frame_names"],
            "stance_names": described["stance_names"],
            "thresholds": described["thresholds"],
            "schema_version": described["schema_version"],
            "training_metrics": custom.get("metrics", {}),
            "mlflow": {k: v for k, v in info.labels.items() if k.startswith("mlflow")},
            "model_created": info.creation_time.isoformat(),
            "limits": {"max_text_chars": _LIMITS.max_text_chars, "max_batch": _LIMITS.max_batch},
        }

    @bentoml.api(route="/predict")
    async def predict(self, texts: Texts) -> JSONObject:
        """Frames (probabilities and decisions), stance with scores, and evidence n-grams per text."""
        results = await self.batcher.submit(texts)
        label_metrics.record(results, self.model_info)
        if self.prediction_log is not None:
            self.prediction_log.write(texts, results, self.model_info)
        return {"model": self.model_info, "results": results}

    @bentoml.api(route="/metadata")
    def metadata(self) -> JSONObject:
        """Label schema with definitions, thresholds, model version, training metrics, build time."""
        return self.metadata_doc


ROUTES = {"/predict": "POST", "/metadata": "POST", **INFRA_ROUTES,
          **{labelstudio_backend.PREFIX + path: method for path, method in labelstudio_backend.ROUTES.items()}}
# Outermost first: nothing reaches the metrics (or anything else) before the guard has passed it.
FramingClassifier.add_asgi_middleware(RequestGuard, routes=ROUTES,
                                      json_routes=tuple(path for path, method in ROUTES.items() if method == "POST"))
FramingClassifier.add_asgi_middleware(TrafficMetrics, routes=ROUTES)
FramingClassifier.add_asgi_middleware(PublishedSpec, service=FramingClassifier, limits=_LIMITS)
