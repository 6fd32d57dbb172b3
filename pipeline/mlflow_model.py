"""MLflow pyfunc flavour of FramingModel (kept apart so serving never imports MLflow)."""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np

from pipeline.errors import InputError

# ``params={"output": ...}``: "json" (the default: five string columns, JSON for nested values, what
# `mlflow models serve` answers) or "record" (the columns of pipeline.scored, one per frame and stance
# probability plus decided_frames as a list: what `framing score --engine spark` asks spark_udf for).
OUTPUTS = ("json", "record")


def texts_from_input(model_input) -> list[str]:
    """Accept a list, 1-D array, Series, or DataFrame (column ``text`` or the only column) of strings."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "text" in model_input.columns:
            col = model_input["text"]
        elif model_input.shape[1] == 1:
            col = model_input.iloc[:, 0]
        else:
            raise InputError(f"input: expected a 'text' column or a single column, got {list(model_input.columns)}")
        return [str(t) for t in col.tolist()]
    if isinstance(model_input, pd.Series):
        return [str(t) for t in model_input.tolist()]
    if isinstance(model_input, np.ndarray):
        return [str(t) for t in model_input.reshape(-1).tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in model_input]


def records_frame(records: list[dict[str, Any]]):
    """Flatten predict() records to a DataFrame: scalar columns plus JSON strings for nested values."""
    import pandas as pd

    return pd.DataFrame({
        "stance": [r["stance"] for r in records],
        "decided_frames": [json.dumps(r["decided_frames"]) for r in records],
        "frames": [json.dumps(r["frames"]) for r in records],
        "stance_scores": [json.dumps(r["stance_scores"]) for r in records],
        "evidence": [json.dumps(r["evidence"], ensure_ascii=False) for r in records],
    }, columns=["stance", "decided_frames", "frames", "stance_scores", "evidence"])


_LOADED: dict[str, Any] = {}


def _load_cached(path: str):
    """FramingModel.load, once per process and model file: spark_udf loads the model afresh for every
    Spark task (every part of `framing score`), each time from a fresh copy of the model folder, and
    unpickling the champion costs more than scoring a part. Keyed by the file's SHA-256 (~30 ms)."""
    import hashlib

    from pipeline.model import FramingModel

    with open(path, "rb") as fh:
        key = hashlib.file_digest(fh, "sha256").hexdigest()
    if key not in _LOADED:
        _LOADED.clear()  # one model per process is what every caller needs; never let them pile up
        _LOADED[key] = FramingModel.load(path)
    return _LOADED[key]


# MLflow warns once, at class creation, that predict() has no type hints; hints would make it
# re-infer the input schema we set explicitly (a 1-D string tensor), so the warning is accepted.
class FramingPyfunc(mlflow.pyfunc.PythonModel):
    """mlflow.pyfunc wrapper: loads the pickled FramingModel from artifact ``model``.

    ``predict`` takes strings as a 1-D array, Series or DataFrame column and returns one
    row per text. By default nested values are JSON strings so every column is a plain string that
    survives signature enforcement and HTTP serving; ``params={"output": "record"}`` returns the
    whole record as the columns of ``pipeline.scored`` instead (a struct, through ``spark_udf``).
    The logged signature is a 1-D string tensor, so ``PyFuncModel.predict`` rejects a bare Python
    list before this code runs: pass ``np.asarray(texts)`` (over HTTP, ``{"inputs": [...]}`` is
    converted for you).
    """

    def load_context(self, context):
        self.model = _load_cached(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        output = (params or {}).get("output", "json")
        if output not in OUTPUTS:
            raise InputError(f"params.output: expected one of {list(OUTPUTS)}, got {output!r}")
        records = self.model.predict(texts_from_input(model_input))
        if output == "record":
            import pandas as pd

            from pipeline.scored import prediction_columns

            return pd.DataFrame(prediction_columns(records, self.model.frame_names, self.model.stance_names))
        return records_frame(records)
