"""Rejected requests: one short log line each (status, route, reason, fields; never the body), rate-limited.

Every 4xx the service gives goes through here: the request guard's (401, 404, 405, 408, 413,
415, 429), the Label Studio backend's 400s and BentoML's own 400s for /predict, which BentoML
logs with a full pydantic traceback (~3 KB each); ``QuietRejections`` turns those records into
the same one line. At most ``rate`` lines per second are written (a burst of the same size is
allowed); the lines held back are counted and the count is given in the next line written, so
a flood of bad requests costs a few lines a second, not megabytes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable

log = logging.getLogger("framing.rejections")

# BentoML logs a failed API call with ``log_exception`` on this logger (bentoml 1.4).
BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"


class RateLimiter:
    """Token bucket: ``allow()`` is true at most ``rate`` times a second (bursts of ``rate``)."""

    def __init__(self, rate: float, clock=time.monotonic):
        self.rate = float(rate)
        self.clock = clock
        self.tokens = self.rate
        self.last = clock()
        self.held_back = 0
        self._lock = threading.Lock()

    def allow(self) -> tuple[bool, int]:
        """(whether to write this line, how many were held back since the last one written)."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < 1:
                self.held_back += 1
                return False, 0
            self.tokens -= 1
            held, self.held_back = self.held_back, 0
            return True, held


_limiter = RateLimiter(10.0)


def configure(rate: float) -> None:
    """Set the lines-per-second limit (the service does, from FRAMING_REJECTION_LOG_RATE, at start)."""
    global _limiter
    _limiter = RateLimiter(rate)
    log.setLevel(logging.INFO)  # BentoML's server config leaves the root logger (our handler) at WARNING


def fields_of(errors: Iterable[dict]) -> list[str]:
    """``texts.3 (string_too_long)`` for each pydantic error: where, and what kind; no input."""
    return [f"{'.'.join(map(str, e.get('loc', ()))) or 'body'} ({e.get('type', 'invalid')})" for e in errors]


def line(status: int, method: str, path: str, reason: str, fields: Iterable[str] = ()) -> str:
    fields = list(fields)
    shown = ", ".join(fields[:3]) + (f" and {len(fields) - 3} more" if len(fields) > 3 else "")
    return f"rejected {method} {path} {status} {reason}" + (f": {shown}" if shown else "")


def record(status: int, method: str, path: str, reason: str, fields: Iterable[str] = ()) -> None:
    """Log one rejected request, if the rate limit allows; ``path`` must be a known route (never a client's string)."""
    ok, held = _limiter.allow()
    if ok:
        log.info("%s%s", line(status, method, path, reason, fields),
                 f" ({held} more rejections not logged)" if held else "")


class QuietRejections(logging.Filter):
    """On BentoML's HTTP logger: a record of a rejected request (a pydantic ValidationError, or a
    BentoML error below 500) becomes one rate-limited line; real server errors keep their traceback."""

    def filter(self, record_: logging.LogRecord) -> bool:
        exc = record_.exc_info[1] if record_.exc_info else None
        rejected = _rejection(exc)
        if rejected is None:
            return True
        status, reason, fields = rejected
        ok, held = _limiter.allow()
        if not ok:
            return False
        path, method = _request_of(record_)
        record_.msg = "%s%s"
        record_.args = (line(status, method, path, reason, fields), f" ({held} more rejections not logged)" if held else "")
        record_.exc_info = record_.exc_text = None
        record_.levelno, record_.levelname = logging.INFO, "INFO"
        return True


def _rejection(exc: Any) -> tuple[int, str, list[str]] | None:
    if exc is None:
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_context=False, include_input=False, include_url=False)
        return 400, "invalid body", fields_of(errors)
    status = getattr(getattr(exc, "error_code", None), "value", None)  # BentoMLException
    if isinstance(status, int) and status < 500:
        return status, type(exc).__name__, []
    return None


def _request_of(record_: logging.LogRecord) -> tuple[str, str]:
    # log_exception's message is "Exception on %s [%s]" % (path, method); the path is an API route.
    args = record_.args if isinstance(record_.args, tuple) else ()
    return (str(args[0]), str(args[1])) if len(args) == 2 else ("?", "?")
