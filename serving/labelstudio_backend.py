"""Label Studio's ML-backend protocol, served by the prediction service under /labelstudio.

Point a Label Studio project's Model setting (Settings → Model → Connect model) at
``http://<host>:<port>/labelstudio``: when annotators open tasks, Label Studio asks this
backend for predictions from the deployed champion. Endpoints: GET /health, POST /setup,
POST /predict, POST /webhook. The conversion to Label Studio results is the one
`framing labelstudio push` uses (``pipeline.labelstudio.prediction``, standard library only),
so live and pushed pre-annotations are the same.

Bodies are validated like /predict's (``serving.requests``: same JSON parser, same per-text
length limit, same 400 shape), and the request guard limits their size and read time.
"""

from __future__ import annotations

from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.labelstudio.prediction import model_version_label, prediction
from serving import rejections
from serving.requests import MAX_TASKS, BadRequest, labelstudio_models, parse

PREFIX = "/labelstudio"
ROUTES = {"/health": "GET", "/setup": "POST", "/predict": "POST", "/webhook": "POST"}  # relative to PREFIX


def _service():
    return bentoml.get_current_service()


def model_version(service) -> str:
    """``framing-classifier@v3``: the registered model and version, as `framing labelstudio push` names it."""
    info = service.model_info
    return model_version_label(info["registered_as"], info["version"])


def task_texts(body: bytes, max_chars: int, max_tasks: int = MAX_TASKS) -> list[str]:
    """The passage text of every task in a /predict body; BadRequest (its 400 reply names the field) otherwise."""
    request = parse(labelstudio_models(max_chars, max_tasks)["predict"], body)
    return [task.data.text for task in request.tasks]


def create_app(max_chars: int) -> Starlette:
    """The ML backend as an ASGI app, with the service's per-text limit."""
    models = labelstudio_models(max_chars)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "UP", "model_class": "FramingClassifier",
                             "model_version": model_version(_service())})

    async def setup(request: Request) -> JSONResponse:
        parse(models["setup"], await request.body())
        return JSONResponse({"model_version": model_version(_service())})

    async def predict(request: Request) -> JSONResponse:
        service = _service()
        tasks = parse(models["predict"], await request.body()).tasks
        outputs = await service.batcher.submit([task.data.text for task in tasks])
        version = model_version(service)
        return JSONResponse({"results": [prediction(out, service.labels, version) for out in outputs],
                             "model_version": version})

    async def webhook(request: Request) -> JSONResponse:
        # Training happens in `dvc repro` after `framing labelstudio pull`, not on annotation events.
        parse(models["webhook"], await request.body())
        return JSONResponse({"status": "ok"})

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BadRequest)
        # the path is one of the four routes (they are exact): never an arbitrary string
        rejections.record(400, request.method, request.url.path, "invalid body",
                          rejections.fields_of(exc.body["detail"]))
        return JSONResponse(exc.body, status_code=400)

    handlers: dict[str, Any] = {"/health": health, "/setup": setup, "/predict": predict, "/webhook": webhook}
    return Starlette(routes=[Route(path, handlers[path], methods=[method]) for path, method in ROUTES.items()],
                     exception_handlers={BadRequest: bad_request})
