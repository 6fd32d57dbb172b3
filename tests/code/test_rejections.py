"""serving/rejections.py: one short, rate-limited line per rejected request, never the request's data."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field, ValidationError

from serving import rejections


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_rate_limiter_allows_a_burst_then_the_rate_and_counts_what_it_held_back():
    clock = Clock()
    limiter = rejections.RateLimiter(3, clock=clock)
    assert [limiter.allow()[0] for _ in range(5)] == [True, True, True, False, False]
    clock.now = 1 / 3  # one more token
    assert limiter.allow() == (True, 2)  # the two held back are reported with the next line written
    assert limiter.allow() == (False, 0)


class Body(BaseModel):
    texts: list[str] = Field(max_length=2)


def _bentoml_style_record(exc: BaseException) -> logging.LogRecord:
    # what bentoml's log_exception writes: logger.error("Exception on %s [%s]", path, method, exc_info=True)
    return logging.LogRecord(rejections.BENTOML_HTTP_LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]",
                             ("/predict", "POST"), (type(exc), exc, exc.__traceback__))


def test_a_validation_traceback_becomes_one_line_with_fields_and_no_input(monkeypatch):
    monkeypatch.setattr(rejections, "_limiter", rejections.RateLimiter(100))
    secret = "the client's confidential passage"
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"texts": [secret, 3, "x"]})
    record = _bentoml_style_record(caught.value)
    assert rejections.QuietRejections().filter(record)
    message = record.getMessage()
    assert message == "rejected POST /predict 400 invalid body: texts (too_long)"
    assert record.exc_info is None and record.levelno == logging.INFO
    assert secret not in logging.Formatter().format(record)


def test_real_server_errors_keep_their_traceback_and_floods_are_dropped(monkeypatch):
    monkeypatch.setattr(rejections, "_limiter", rejections.RateLimiter(2))
    try:
        raise RuntimeError("model crashed")
    except RuntimeError as exc:
        record = _bentoml_style_record(exc)
    assert rejections.QuietRejections().filter(record) and record.exc_info is not None
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"texts": 1})
    kept = [rejections.QuietRejections().filter(_bentoml_style_record(caught.value)) for _ in range(5)]
    assert kept == [True, True, False, False, False]


def test_a_line_names_at_most_three_fields():
    assert rejections.line(400, "POST", "/predict", "invalid body", ["a", "b", "c", "d", "e"]) == \
        "rejected POST /predict 400 invalid body: a, b, c and 2 more"
