"""Per-label prediction counters on the service's Prometheus ``/metrics``, so Grafana can chart live
what `framing monitor` reports from the log:

    framing_predictions_total{model_version}                 texts predicted
    framing_predicted_frame_total{frame, model_version}      texts given each frame
    framing_predicted_stance_total{stance, model_version}    texts of each stance

A frame's rate is ``rate(framing_predicted_frame_total[1h]) / ignoring(frame)
group_left rate(framing_predictions_total[1h])``. Every label's series starts at 0 with the first
request, so a label never predicted still shows. The counters are created on first use, not at
import: BentoML points prometheus_client at its multiprocess directory only once the worker has
started (see bentoml/metrics.py), and a counter made before that would not reach ``/metrics``.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

_lock = threading.Lock()
_counters: dict[str, Any] = {}
_seen: set[tuple[str, str]] = set()


def _get() -> dict[str, Any]:
    with _lock:
        if not _counters:
            from prometheus_client import Counter

            _counters["total"] = Counter("framing_predictions", "Texts predicted", ["model_version"])
            _counters["frame"] = Counter("framing_predicted_frame", "Texts given each frame", ["frame", "model_version"])
            _counters["stance"] = Counter("framing_predicted_stance", "Texts of each predicted stance",
                                          ["stance", "model_version"])
        return _counters


def record(results: Sequence[Mapping], model: Mapping) -> None:
    """Count one request's ``results`` (model outputs: ``decided_frames``, ``stance``, ``frames``,
    ``stance_scores``) under ``model["version"]``."""
    if not results:
        return
    counters, version = _get(), str(model.get("version", ""))
    for task, key in (("frame", "frames"), ("stance", "stance_scores")):
        if (task, version) not in _seen:  # every label's series exists from the first request on
            for label in results[0].get(key) or {}:
                counters[task].labels(label, version)
            _seen.add((task, version))
    counters["total"].labels(version).inc(len(results))
    for result in results:
        for frame in result.get("decided_frames") or ():
            counters["frame"].labels(frame, version).inc()
        if result.get("stance") is not None:
            counters["stance"].labels(result["stance"], version).inc()
