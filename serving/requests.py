"""What a request body may hold: the request types of every POST route, built from the limits.

One definition serves three purposes, so they cannot drift apart: pydantic validates bodies with
it (BentoML for /predict, ``parse`` for the /labelstudio routes), the published OpenAPI spec is
generated from it (``serving/openapi.py``), and rejections share one shape, ``ERROR_SCHEMA``.

Bodies are parsed by pydantic's JSON parser on every route, so a lone surrogate escape
(``"\\ud800"``, not valid Unicode) and nesting deeper than 200 levels are 400s everywhere.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# Python's whitespace (``str.isspace``/``str.strip``), spelled out so that the published pattern
# means the same in JSON Schema's ECMA-262 regexes, Python's ``re`` and pydantic's Rust engine.
_WHITESPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NON_BLANK = f"[^{_WHITESPACE}]"  # searched, not anchored: "holds at least one non-whitespace character"

MAX_TASKS = 256  # tasks per /labelstudio/predict request (Label Studio sends one, or a page)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty or whitespace-only text")
    return text


def text_type(max_chars: int, description: str):
    """A passage: 1 to ``max_chars`` characters, not all whitespace (the schema says so too)."""
    return Annotated[str, Field(max_length=max_chars, description=description, json_schema_extra={"pattern": NON_BLANK}),
                     AfterValidator(_not_blank)]


def texts_type(max_chars: int, max_batch: int):
    """/predict's ``texts``: 1 to ``max_batch`` passages."""
    return Annotated[list[text_type(max_chars, "A passage (not empty or whitespace-only).")],
                     Field(description="Passages to classify, in order.", min_length=1, max_length=max_batch)]


class _Open(BaseModel):
    # Label Studio sends more fields than these (ids, annotations, metadata); they are ignored.
    model_config = ConfigDict(extra="allow")


@lru_cache(maxsize=8)
def labelstudio_models(max_chars: int, max_tasks: int = MAX_TASKS) -> dict[str, type[BaseModel]]:
    """The request bodies of the Label Studio ML-backend routes, by route name."""

    class LabelStudioTaskData(_Open):
        text: text_type(max_chars, "The passage (the labeling config's Text tag reads `$text`).")

    class LabelStudioTask(_Open):
        data: LabelStudioTaskData

    class LabelStudioPredictRequest(_Open):
        """Tasks to pre-annotate, as Label Studio sends them."""

        tasks: Annotated[list[LabelStudioTask], Field(min_length=1, max_length=max_tasks)]

    class LabelStudioSetupRequest(_Open):
        """Label Studio's connection check (project, labeling config, ...); every field is optional."""

    class LabelStudioWebhookRequest(_Open):
        """An annotation event; acknowledged, not acted on (training happens in `dvc repro`)."""

    return {"predict": LabelStudioPredictRequest, "setup": LabelStudioSetupRequest,
            "webhook": LabelStudioWebhookRequest}


class BadRequest(ValueError):
    """A body that does not match its route's request type; ``body`` is the 400 reply."""

    def __init__(self, body: dict[str, Any]):
        super().__init__(body["error"])
        self.body = body


def error_body(exc: ValidationError) -> dict[str, Any]:
    """The 400 reply for a validation error: the shape BentoML gives /predict, so every route answers alike."""
    return {"error": f"{exc.error_count()} validation error for {exc.title}",
            "detail": exc.errors(include_context=False, include_input=False)}


def parse(model: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` validated as ``model`` (pydantic's JSON parser); BadRequest with the 400 reply otherwise."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(error_body(exc)) from None


# The JSON of every 4xx reply: ``error`` always; ``detail`` when the body failed validation.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What was wrong, in one sentence."},
        "detail": {
            "type": "array",
            "description": "Validation errors (400 only): one per field at fault. No request data is echoed.",
            "items": {
                "type": "object",
                "required": ["type", "loc", "msg"],
                "properties": {
                    "type": {"type": "string", "description": "Error kind, e.g. `string_too_long`, `json_invalid`."},
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            "description": "Path to the field, e.g. `[\"texts\", 3]`; `[]` for the body as a whole."},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
