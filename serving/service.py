"""The prediction API: one thin BentoML service around the model's own ``predict``.

Everything the model knows (preprocessing, label names, thresholds) lives in the
saved model; this class only validates requests, batches them and shapes replies.

Configuration (environment, read when the service starts):

| variable | default | meaning |
|---|---|---|
| FRAMING_MODEL_TAG | framing-classifier:latest | BentoML model to serve |
| FRAMING_MAX_TEXT_CHARS | 20000 | longest text accepted |
| FRAMING_MAX_BATCH | 256 | most texts in one request |
| FRAMING_MAX_BODY_BYTES | 4194304 | largest request body (413 above it) |
| FRAMING_API_KEY | unset | when set, required on every endpoint except /livez, /readyz, /healthz |
| FRAMING_PREDICTION_LOG | unset | path of a JSONL file receiving every prediction (monitoring) |
| FRAMING_WORKERS | 1 | worker processes (see bench/RESULTS.md before raising it on 2 cores) |
| FRAMING_ACCESS_LOG | off | one log line per request |
| FRAMING_TRACING | off | OpenTelemetry spans for /predict and /metadata (configure an exporter in BentoML) |
"""

from __future__ import annotations

import gc
import json
import os
import threading
from datetime import datetime, timezone
from typing import Annotated, Any

import bentoml
from bentoml.validators import ContentType
from pydantic import AfterValidator, Field

from serving import labelstudio_backend
from serving.batching import MicroBatcher
from serving.guard import RequestGuard

def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


MODEL_TAG = os.environ.get("FRAMING_MODEL_TAG", "framing-classifier:latest")
MAX_TEXT_CHARS = int(os.environ.get("FRAMING_MAX_TEXT_CHARS", "20000"))
MAX_BATCH = int(os.environ.get("FRAMING_MAX_BATCH", "256"))


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty or whitespace-only text")
    return text


# Validation errors come back as 400 {"error": ..., "detail": [{"loc": ["texts", i], "msg": ...}]},
# the same shape as every other malformed request; the limits also appear in the OpenAPI schema.
Texts = Annotated[
    list[Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)]],
    Field(description="Passages to classify, in order.", min_length=1, max_length=MAX_BATCH),
]


# A declared content type spares BentoML from rebuilding the output's JSON schema on
# every response just to choose one (~10% of a worker's time under load).
JSONObject = Annotated[dict[str, Any], ContentType("application/json")]


class PredictionLog:
    """Append-only JSONL sink for monitoring; one line per text (no raw text, only its length and hash)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def write(self, texts: list[str], results: list[dict], model: dict) -> None:
        import hashlib

        now = datetime.now(timezone.utc).isoformat()
        lines = [json.dumps({"time": now, "model": model, "text_sha256": hashlib.sha256(t.encode()).hexdigest()[:16],
                             "chars": len(t), **r}, ensure_ascii=False) for t, r in zip(texts, results)]
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


@bentoml.asgi_app(labelstudio_backend.app, path="/labelstudio")
@bentoml.service(
    name="framing_classifier",
    # One worker with one event loop: the model call runs in an executor thread
    # while the loop keeps parsing requests, and micro-batching turns concurrency
    # into batch size. See bench/RESULTS.md for why not more workers on 2 cores.
    workers=int(os.environ.get("FRAMING_WORKERS", "1")),
    traffic={"timeout": 30, "max_concurrency": 1024},
    # Per-request OpenTelemetry spans (with no exporter configured) and access-log lines
    # cost ~20% of a worker's time under load (bench/RESULTS.md): off unless asked for.
    tracing={"excluded_urls": [] if _flag("FRAMING_TRACING") else ["/predict", "/metadata"]},
    logging={"access": {"enabled": _flag("FRAMING_ACCESS_LOG")}},
)
class FramingClassifier:
    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import joblib

        self.model = joblib.load(self.bento_model.path_of("model.pkl"))
        info = self.bento_model.info
        self.model_info = {"name": self.model.name, "tag": str(info.tag),
                           "version": info.labels.get("mlflow_version", str(info.tag.version))}
        self.metadata_doc = self._metadata()
        self.batcher = MicroBatcher(self.model.predict, max_batch=64)
        log_path = os.environ.get("FRAMING_PREDICTION_LOG")
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
            "limits": {"max_text_chars": MAX_TEXT_CHARS, "max_batch": MAX_BATCH},
        }

    @bentoml.api(route="/predict")
    async def predict(self, texts: Texts) -> JSONObject:
        """Frames (probabilities and decisions), stance with scores, and evidence n-grams per text."""
        results = await self.batcher.submit(texts)
        if self.prediction_log is not None:
            self.prediction_log.write(texts, results, self.model_info)
        return {"model": self.model_info, "results": results}

    @bentoml.api(route="/metadata")
    def metadata(self) -> JSONObject:
        """Label schema with definitions, thresholds, model version, training metrics, build time."""
        return self.metadata_doc


FramingClassifier.add_asgi_middleware(
    RequestGuard,
    api_key_env="FRAMING_API_KEY",
    max_body_bytes=int(os.environ.get("FRAMING_MAX_BODY_BYTES", str(4 * 1024 * 1024))),
    json_routes=("/predict", "/metadata", "/labelstudio/predict"),
)
