"""Label Studio's ML-backend protocol, served by the prediction service under /labelstudio.

Point a Label Studio project's Model setting (Settings → Model → Connect model) at
``http://<host>:<port>/labelstudio``: when annotators open tasks, Label Studio asks this
backend for predictions from the deployed champion. Endpoints: GET /health, POST /setup,
POST /predict, POST /webhook. The conversion to Label Studio results is the one
`framing labelstudio push` uses, so live and pushed pre-annotations are the same.
"""

from __future__ import annotations

from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.config import Label, LabelSchema
from pipeline.labelstudio.active import confidence
from pipeline.labelstudio.convert import prediction

MAX_TASKS = 256


def schema_from_metadata(metadata: dict[str, Any]) -> LabelSchema:
    """The label schema stored with the model at packaging time (labels come from the model)."""
    labels = metadata.get("labels") or {}

    def as_labels(kind: str, names: list[str]) -> tuple[Label, ...]:
        specs = labels.get(kind) or {}
        return tuple(Label(key=n, display=(specs.get(n) or {}).get("display", n),
                           definition=(specs.get(n) or {}).get("definition", "")) for n in names)

    return LabelSchema(schema_version=int(metadata.get("schema_version", 1)), target=labels.get("target", ""),
                       frames=as_labels("frames", metadata["frame_names"]),
                       stance=as_labels("stance", metadata["stance_names"]), flags=())


def _service():
    return bentoml.get_current_service()


def model_version(service) -> str:
    info = service.model_info
    return f"{info['name']}@v{info['version']}"


async def health(request: Request) -> JSONResponse:
    service = _service()
    return JSONResponse({"status": "UP", "model_class": "FramingClassifier", "model_version": model_version(service)})


async def setup(request: Request) -> JSONResponse:
    return JSONResponse({"model_version": model_version(_service())})


async def predict(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(tasks, list) or not tasks:
        return JSONResponse({"error": "'tasks' must be a non-empty list"}, status_code=400)
    if len(tasks) > MAX_TASKS:
        return JSONResponse({"error": f"{len(tasks)} tasks is more than the maximum of {MAX_TASKS}"}, status_code=400)
    texts = []
    for i, task in enumerate(tasks):
        text = ((task or {}).get("data") or {}).get("text") if isinstance(task, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse({"error": f"tasks[{i}].data.text: missing or empty"}, status_code=400)
        texts.append(text)
    service = _service()
    outputs = await service.batcher.submit(texts)
    schema = schema_from_metadata(service.metadata_doc)
    version = model_version(service)
    results = [prediction(out, schema, version, confidence(out)) for out in outputs]
    return JSONResponse({"results": results, "model_version": version})


async def webhook(request: Request) -> JSONResponse:
    # Training happens in `dvc repro` after `framing labelstudio pull`, not on annotation events.
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/health", health, methods=["GET"]),
    Route("/setup", setup, methods=["POST"]),
    Route("/predict", predict, methods=["POST"]),
    Route("/webhook", webhook, methods=["POST"]),
])
