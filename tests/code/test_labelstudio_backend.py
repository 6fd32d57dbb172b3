"""serving/labelstudio_backend.py in-process: which /predict bodies are answered, and what the 400 says."""

import json

import pytest

from serving.labelstudio_backend import task_texts
from serving.requests import BadRequest


def test_texts_of_every_task_in_order():
    body = {"tasks": [{"id": 1, "data": {"text": "one"}}, {"id": 2, "data": {"text": "two", "other": 1}}]}
    assert task_texts(json.dumps(body).encode(), max_chars=10) == ["one", "two"]


@pytest.mark.parametrize("body, loc, kind", [
    ("null", [], "model_type"),
    ("[]", [], "model_type"),
    ('{"tasks": []}', ["tasks"], "too_short"),
    ('{"tasks": "x"}', ["tasks"], "list_type"),
    ('{"tasks": [{"data": "x"}]}', ["tasks", 0, "data"], "model_type"),  # was a 500 (AttributeError)
    ('{"tasks": ["x"]}', ["tasks", 0], "model_type"),
    ('{"tasks": [{"data": {"text": "ok"}}, {"data": {}}]}', ["tasks", 1, "data", "text"], "missing"),
    ('{"tasks": [{"data": {"text": "  \\u3000"}}]}', ["tasks", 0, "data", "text"], "value_error"),
    ('{"tasks": [{"data": {"text": 3}}]}', ["tasks", 0, "data", "text"], "string_type"),
    ('{"tasks": [{"data": {"text": "xxxxxxxxxxx"}}]}', ["tasks", 0, "data", "text"], "string_too_long"),
    ('{"tasks": [' + ", ".join(['{"data": {"text": "x"}}'] * 4) + "]}", ["tasks"], "too_long"),
    ('{"tasks": [{"data": {"text": "a \\ud800 lone surrogate"}}]}', [], "json_invalid"),  # was a 500
    ("[" * 10000 + "]" * 10000, [], "json_invalid"),  # was a 500 (RecursionError)
    ('{"tasks": [', [], "json_invalid"),
    (b"\xff\xfe", [], "json_invalid"),
])
def test_bad_bodies_are_400s_naming_the_field(body, loc, kind):
    with pytest.raises(BadRequest) as caught:
        task_texts(body.encode() if isinstance(body, str) else body, max_chars=10, max_tasks=3)
    reply = caught.value.body
    assert "validation error for LabelStudioPredictRequest" in reply["error"]
    assert list(reply["detail"][0]["loc"]) == loc and reply["detail"][0]["type"] == kind
    assert all("input" not in e for e in reply["detail"])  # nothing the client sent is echoed
