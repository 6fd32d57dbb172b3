"""The prediction service's settings, from the environment, in one frozen object.

| variable | default | meaning |
|---|---|---|
| FRAMING_MODEL_TAG | the Bento's own model | BentoML model to serve (a tag, or the Bento's model alias) |
| FRAMING_MAX_TEXT_CHARS | 20000 | longest text accepted |
| FRAMING_MAX_BATCH | 256 | most texts in one request |
| FRAMING_MAX_BODY_BYTES | 4194304 | largest request body (413 above it) |
| FRAMING_BODY_TIMEOUT_S | 10 | a request body must arrive whole within this many seconds of its headers (408 and the connection is closed otherwise) |
| FRAMING_HEADER_TIMEOUT_S | 10 | a connection must send a request's complete headers within this many seconds of opening, or of the request's first byte (closed otherwise) |
| FRAMING_MAX_CONCURRENCY | 1024 | requests being answered at once, counted once their body has arrived (429 above it) |
| FRAMING_REJECTION_LOG_RATE | 10 | log lines per second for rejected requests (one line each, no body; the rest are counted in the next line) |
| FRAMING_API_KEY | unset | when set, required on every endpoint except /livez, /readyz, /healthz |
| FRAMING_PREDICTION_LOG | unset | path of a JSONL file receiving every prediction (monitoring) |
| FRAMING_WORKERS | 1 | worker processes (see bench/RESULTS.md before raising it on 2 cores) |
| FRAMING_ACCESS_LOG | off | one log line per request |
| FRAMING_TRACING | off | OpenTelemetry spans for every route (configure an exporter in BentoML) |

The service reads them when it starts (``Settings.from_env()`` in its constructor and
middleware). The two limits also shape the published request schema, so the schema takes
them when the service module loads, which is at start too. Workers, access log and tracing
are BentoML server settings: ``framing serve`` passes them to BentoML as configuration
overrides (``bentoml_overrides``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

SERVICE_NAME = "framing_classifier"
MODEL_ALIAS = "framing-model"  # the Bento's model, as `framing package` names it in the build config


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: must be a positive number, got {raw}")
    return value


@dataclass(frozen=True)
class Settings:
    model_tag: str = MODEL_ALIAS
    max_text_chars: int = 20000
    max_batch: int = 256
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    max_concurrency: int = 1024
    rejection_log_rate: float = 10.0
    api_key: str | None = None
    prediction_log: str | None = None
    workers: int = 1
    access_log: bool = False
    tracing: bool = False

    def __repr__(self) -> str:  # the API key is never shown
        return f"Settings(model_tag={self.model_tag!r}, max_batch={self.max_batch}, api_key={'set' if self.api_key else None})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            model_tag=env.get("FRAMING_MODEL_TAG") or MODEL_ALIAS,
            max_text_chars=_int(env, "FRAMING_MAX_TEXT_CHARS", cls.max_text_chars),
            max_batch=_int(env, "FRAMING_MAX_BATCH", cls.max_batch),
            max_body_bytes=_int(env, "FRAMING_MAX_BODY_BYTES", cls.max_body_bytes),
            body_timeout_s=_float(env, "FRAMING_BODY_TIMEOUT_S", cls.body_timeout_s),
            header_timeout_s=_float(env, "FRAMING_HEADER_TIMEOUT_S", cls.header_timeout_s),
            max_concurrency=_int(env, "FRAMING_MAX_CONCURRENCY", cls.max_concurrency),
            rejection_log_rate=_float(env, "FRAMING_REJECTION_LOG_RATE", cls.rejection_log_rate),
            api_key=env.get("FRAMING_API_KEY") or None,
            prediction_log=env.get("FRAMING_PREDICTION_LOG") or None,
            workers=_int(env, "FRAMING_WORKERS", cls.workers),
            access_log=_flag(env.get("FRAMING_ACCESS_LOG")),
            tracing=_flag(env.get("FRAMING_TRACING")),
        )

    def bentoml_overrides(self) -> str:
        """``BENTOML_CONFIG_OPTIONS`` for the server-level settings (workers, access log, tracing)."""
        prefix = f"services.{SERVICE_NAME}"
        options = [f"{prefix}.workers={self.workers}",
                   f"{prefix}.logging.access.enabled={'true' if self.access_log else 'false'}"]
        if self.tracing:
            options.append(f"{prefix}.tracing.excluded_urls=[]")
        return " ".join(options)
