"""serving/labelstudio_backend.py in-process: which /predict bodies are answered, and what the 400 says."""

import pytest

from serving.labelstudio_backend import BadRequest, task_texts


def test_texts_of_every_task_in_order():
    body = {"tasks": [{"id": 1, "data": {"text": "one"}}, {"id": 2, "data": {"text": "two", "other": 1}}]}
    assert task_texts(body) == ["one", "two"]


@pytest.mark.parametrize("body, message", [
    (None, "'tasks' must be a non-empty list"),
    ([], "'tasks' must be a non-empty list"),
    ({"tasks": []}, "'tasks' must be a non-empty list"),
    ({"tasks": "x"}, "'tasks' must be a non-empty list"),
    ({"tasks": [{"data": "x"}]}, r"tasks\[0\]\.data: must be an object"),
    ({"tasks": ["x"]}, r"tasks\[0\]\.data: must be an object"),
    ({"tasks": [{"data": {"text": "ok"}}, {"data": {}}]}, r"tasks\[1\]\.data\.text: missing or empty"),
    ({"tasks": [{"data": {"text": "  "}}]}, r"tasks\[0\]\.data\.text: missing or empty"),
    ({"tasks": [{"data": {"text": 3}}]}, r"tasks\[0\]\.data\.text: missing or empty"),
    ({"tasks": [{"data": {"text": "x" * 11}}]}, r"tasks\[0\]\.data\.text: 11 characters is more than the maximum of 10"),
    ({"tasks": [{"data": {"text": "x"}}] * 4}, "4 tasks is more than the maximum of 3"),
])
def test_bad_bodies_name_the_task_and_field(body, message):
    with pytest.raises(BadRequest, match=message):
        task_texts(body, max_tasks=3, max_chars=10)
