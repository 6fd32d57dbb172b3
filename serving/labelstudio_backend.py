"""Label Studio's ML-backend protocol, served by the prediction service under /labelstudio.

Point a Label Studio project's Model setting (Settings → Model → Connect model) at
``http://<host>:<port>/labelstudio``: when annotators open tasks, Label Studio asks this
backend for predictions from the deployed champion. Endpoints: GET /health, POST /setup,
POST /predict, POST /webhook. The conversion to Label Studio results is the one
`framing labelstudio push` uses (``pipeline.labelstudio.prediction``, standard library only),
so live and pushed pre-annotations are the same.
"""

from __future__ import annotations

import json
from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.labelstudio.prediction import model_version_label, prediction

MAX_TASKS = 256


def _service():
    return bentoml.get_current_service()


def model_version(service) -> str:
    """``framing-classifier@v3``: the registered model and version, as `framing labelstudio push` names it."""
    info = service.model_info
    return model_version_label(info["registered_as"], info["version"])


async def health(request: Request) -> JSONResponse:
    service = _service()
    return JSONResponse({"status": "UP", "model_class": "FramingClassifier", "model_version": model_version(service)})


async def setup(request: Request) -> JSONResponse:
    return JSONResponse({"model_version": model_version(_service())})


class BadRequest(ValueError):
    """A request Label Studio (or anyone) sent that this backend cannot answer: a 400 with the message."""


def task_texts(body: Any, max_tasks: int = MAX_TASKS, max_chars: int = 20000) -> list[str]:
    """The passage text of every task in a /predict body; BadRequest names the task and field at fault."""
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(tasks, list) or not tasks:
        raise BadRequest("'tasks' must be a non-empty list")
    if len(tasks) > max_tasks:
        raise BadRequest(f"{len(tasks)} tasks is more than the maximum of {max_tasks}")
    texts = []
    for i, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise BadRequest(f"tasks[{i}].data: must be an object")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest(f"tasks[{i}].data.text: missing or empty")
        if len(text) > max_chars:
            raise BadRequest(f"tasks[{i}].data.text: {len(text)} characters is more than the maximum of {max_chars}")
        texts.append(text)
    return texts


async def predict(request: Request) -> JSONResponse:
    service = _service()
    try:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):  # RecursionError: pathologically deep nesting
            raise BadRequest("body must be JSON") from None
        texts = task_texts(body, MAX_TASKS, service.settings.max_text_chars)
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    outputs = await service.batcher.submit(texts)
    version = model_version(service)
    return JSONResponse({"results": [prediction(out, service.labels, version) for out in outputs],
                         "model_version": version})


async def webhook(request: Request) -> JSONResponse:
    # Training happens in `dvc repro` after `framing labelstudio pull`, not on annotation events.
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/health", health, methods=["GET"]),
    Route("/setup", setup, methods=["POST"]),
    Route("/predict", predict, methods=["POST"]),
    Route("/webhook", webhook, methods=["POST"]),
])
