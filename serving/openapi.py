"""The published OpenAPI spec (GET /docs.json): BentoML's, completed to say what the server does.

BentoML's spec covers /predict and /metadata and its health routes. Here it gains:

- the Label Studio ML-backend routes under /labelstudio, their request bodies generated from
  the same pydantic models that validate them (``serving.requests``);
- every status the guard or the app can answer, on every route, with the real JSON of the 4xx
  replies: ``{"error": str, "detail": [{"type", "loc", "msg"}]}`` (BentoML documents ``detail`` as
  a string; it is the list of validation errors);
- request bodies marked required, and the media types of the text routes (/metrics, health).

What the schema allows the server accepts, and what it rejects the schema does not allow
(blank texts, over-long texts and batches): schemathesis checks both (tests/integration).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from serving import labelstudio_backend
from serving.requests import ERROR_SCHEMA, labelstudio_models
from serving.settings import Settings

_REF = "#/components/schemas/{model}"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}


def _errors(settings: Settings, post: bool) -> dict[str, Any]:
    out = {
        "401": _error("Missing or wrong API key (only when the server has FRAMING_API_KEY set)."),
        "429": _error(f"More than FRAMING_MAX_CONCURRENCY ({settings.max_concurrency}) requests being answered; "
                      "retry after the Retry-After seconds."),
        "500": _error("Server error (see the server log)."),
    }
    if post:
        out.update({
            "400": _error("The body is not JSON, or does not match the request schema: `detail` lists each field at "
                          "fault (`loc`, `msg`, `type`); no request data is echoed."),
            "408": _error(f"The body did not arrive within FRAMING_BODY_TIMEOUT_S ({settings.body_timeout_s:g} s) of "
                          "the headers; the connection is closed."),
            "413": _error(f"The body is over FRAMING_MAX_BODY_BYTES ({settings.max_body_bytes} bytes), chunked or not."),
            "415": _error("The content type is not application/json."),
        })
    return out


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def published_spec(base: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``base`` (BentoML's spec as a dict) with the Label Studio routes, real error bodies and media types."""
    spec = copy.deepcopy(base)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # BentoML's, with detail as a string
        schemas.pop(name, None)
    paths = spec["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            responses = {str(code): r for code, r in operation.get("responses", {}).items() if str(code) == "200"}
            responses.update(_errors(settings, post=method == "post"))
            operation["responses"] = responses
            if method == "post":
                operation["requestBody"]["required"] = True
    paths["/metrics"]["get"]["responses"]["200"] = _text("Prometheus text exposition (metrics labelled by route).")
    for path in ("/livez", "/healthz"):
        paths[path]["get"]["responses"]["200"] = _text("The service is alive.")
    paths["/readyz"]["get"]["responses"]["200"] = _text("The model is loaded and the service takes requests.")
    paths["/readyz"]["get"]["responses"]["503"] = _error("Not ready yet.")
    paths.update(_labelstudio_paths(settings, schemas))
    return spec


def _labelstudio_paths(settings: Settings, schemas: dict[str, Any]) -> dict[str, Any]:
    models = labelstudio_models(settings.max_text_chars)
    prefix = labelstudio_backend.PREFIX
    tag = ["Label Studio ML backend"]
    health = {"type": "object", "required": ["status", "model_version"],
              "properties": {"status": {"type": "string", "enum": ["UP"]}, "model_class": {"type": "string"},
                             "model_version": {"type": "string"}}}
    replies = {
        "setup": {"type": "object", "required": ["model_version"], "properties": {"model_version": {"type": "string"}}},
        "predict": {"type": "object", "required": ["results", "model_version"],
                    "properties": {"model_version": {"type": "string"},
                                   "results": {"type": "array", "description": "One Label Studio prediction per task, "
                                               "in order.", "items": {"type": "object"}}}},
        "webhook": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    }
    about = {"setup": "Label Studio's connection check: the model version served.",
             "predict": "Pre-annotations (frames, stance, scores) for each task's `data.text`.",
             "webhook": "Annotation events: acknowledged; training happens in `dvc repro`."}
    paths: dict[str, Any] = {f"{prefix}/health": {"get": {
        "tags": tag, "description": "Label Studio's health check: status and the model version served.",
        "operationId": "labelstudio__health",
        "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": health}}},
                      **_errors(settings, post=False)}}}}
    for name, model in models.items():
        schema = model.model_json_schema(ref_template=_REF)
        for sub, definition in schema.pop("$defs", {}).items():
            schemas[f"{sub}"] = definition
        schemas[model.__name__] = schema
        paths[f"{prefix}/{name}"] = {"post": {
            "tags": tag, "description": about[name], "operationId": f"labelstudio__{name}",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": _REF.format(model=model.__name__)}}}},
            "responses": {"200": {"description": "Successful Response",
                                  "content": {"application/json": {"schema": replies[name]}}},
                          **_errors(settings, post=True)}}}
    return paths


class PublishedSpec:
    """ASGI middleware answering GET /docs.json with ``published_spec`` (built once, on first request)."""

    def __init__(self, app, service, limits: Settings):
        self.app = app
        self.service = service
        self.limits = limits
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if self._body is None:
            self._body = json.dumps(published_spec(self.service.openapi_spec.asdict(), self.limits)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else self._body})
