"""Predictions as one table, whichever tool wrote them: what `framing report` and `framing monitor` read.

Three shapes are accepted, as JSONL (one object per line) or Parquet, one file or a folder of them:

- `framing score` output: the input's fields (``id``, ``text``, ``date``, ``outlet``, ...), a float
  ``frame_<key>`` per frame, ``decided_frames`` (list), ``stance``, a float ``stance_<key>`` per stance,
  ``evidence`` (a JSON string or mapping: frame → phrases), ``model_name``, ``model_version``;
- `framing predict --file` lines: ``text``, ``frames`` {key: p}, ``decided_frames``, ``stance``,
  ``stance_scores`` {key: p}, ``evidence`` {frame: phrases}, plus any metadata passed through;
- the serving prediction log (``FRAMING_PREDICTION_LOG``): as `predict`, with ``time``, ``model``
  {name, tag, version}, ``text_sha256`` and ``chars`` instead of the text.

``read_predictions`` returns the first table: ``frame_<key>`` (probability), ``has_<key>`` (decided,
bool), ``stance``, ``stance_<key>``, ``evidence`` (dict), ``model_name``, ``model_version``, ``chars``,
``date`` (Timestamp or NaT) and the metadata columns as given; ``where`` names each row's file and
line (or row) for messages. Label keys come from the label schema; anything else is an InputError
naming file, line and field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.errors import InputError

SUFFIXES = (".jsonl", ".json", ".parquet")
HINT = "expected the output of `framing score`, `framing predict --file` or the serving prediction log"


def prediction_files(path: str | Path) -> list[Path]:
    """The JSONL/Parquet files at ``path`` (a file, or a folder searched recursively; hidden and
    ``_``-prefixed files such as Spark's ``_SUCCESS`` are skipped)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise InputError(f"{path}: not found")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                   and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not files:
        raise InputError(f"{path}: no .jsonl or .parquet files in this folder")
    return files


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows, where = [], []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not UTF-8 ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            rows.append(record)
            where.append(f"{path}:{lineno}")
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    frame["where"] = where
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for a damaged or non-parquet file
        raise InputError(f"{path}: cannot read as Parquet ({exc})") from None
    frame["where"] = [f"{path} row {i + 1}" for i in range(len(frame))]
    return frame


def read_raw(path: str | Path) -> pd.DataFrame:
    """Every row of every prediction file at ``path``, columns as written, plus ``where``."""
    parts = [(_read_parquet if f.suffix == ".parquet" else _read_jsonl)(f) for f in prediction_files(path)]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if frame.empty:
        raise InputError(f"{path}: no predictions (the file is empty); {HINT}")
    return frame


def _fail(where: str, field: str, message: str) -> None:
    raise InputError(f"{where}: field {field!r}: {message}")


def _as_mapping(value, where: str, field: str) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            _fail(where, field, f"not valid JSON ({exc.msg})")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    if not isinstance(value, dict):
        _fail(where, field, f"expected a mapping, got {type(value).__name__}")
    return value


def _expand(frame: pd.DataFrame, column: str, prefix: str, keys: Sequence[str]) -> None:
    """``column`` of {key: p} mappings → one float column ``prefix + key`` per key (in place)."""
    values = {k: np.empty(len(frame)) for k in keys}
    for i, (value, where) in enumerate(zip(frame[column], frame["where"])):
        mapping = _as_mapping(value, where, column)
        unknown = sorted(set(mapping) - set(keys))
        if unknown:
            _fail(where, column, f"label(s) {unknown} are not in the label schema {list(keys)}")
        for k in keys:
            if k not in mapping:
                _fail(where, column, f"no score for {k!r}")
            values[k][i] = mapping[k] if isinstance(mapping[k], (int, float)) else np.nan
    for k in keys:
        frame[prefix + k] = values[k]


def _check_scores(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    for col in columns:
        scores = pd.to_numeric(frame[col], errors="coerce")
        bad = scores.isna() | (scores < 0) | (scores > 1)
        if bad.any():
            row = frame[bad].iloc[0]
            _fail(row["where"], col, f"expected a probability in [0, 1], got {row[col]!r}")
        frame[col] = scores.astype(float)


def _as_list(value) -> list | None:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def parse_dates(values: pd.Series, where: pd.Series, field: str) -> pd.Series:
    """ISO dates or times (``2024-06-19``, ``2024-06``, ``2026-12-01T10:00:00+00:00``) → naive UTC
    Timestamps; empty or missing → NaT; anything else is an InputError naming the row."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
        return parsed.dt.tz_localize(None)
    text = values.astype("object").where(values.notna(), None)
    text = text.map(lambda v: None if v is None or (isinstance(v, str) and not v.strip()) else str(v).strip())
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = text.notna() & parsed.isna()
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise InputError(f"{where.iloc[i]}: field {field!r}: cannot parse {text.iloc[i]!r} as a date "
                         "(expected ISO 8601, e.g. 2024-06-19)")
    return parsed.dt.tz_localize(None)


def normalise(frame: pd.DataFrame, frame_names: Sequence[str], stance_names: Sequence[str],
              source: str | Path = "predictions") -> pd.DataFrame:
    """The canonical table (module docstring) from rows of any accepted shape."""
    frame = frame.copy()
    frame_cols = [f"frame_{k}" for k in frame_names]
    stance_cols = [f"stance_{k}" for k in stance_names]
    if not all(c in frame for c in frame_cols) and "frames" in frame:
        _expand(frame, "frames", "frame_", frame_names)
    if not all(c in frame for c in stance_cols) and "stance_scores" in frame:
        _expand(frame, "stance_scores", "stance_", stance_names)
    missing = [c for c in ("decided_frames", "stance", *frame_cols, *stance_cols) if c not in frame]
    if missing:
        raise InputError(f"{source}: missing prediction field(s) {missing}; {HINT}")
    _check_scores(frame, frame_cols + stance_cols)
    decided = []
    for value, where in zip(frame["decided_frames"], frame["where"]):
        labels = _as_list(value)
        if labels is None or not all(isinstance(x, str) for x in labels):
            _fail(where, "decided_frames", f"expected a list of frame names, got {value!r}")
        unknown = sorted(set(labels) - set(frame_names))
        if unknown:
            _fail(where, "decided_frames", f"frame(s) {unknown} are not in the label schema {list(frame_names)}")
        decided.append(set(labels))
    for k in frame_names:
        frame[f"has_{k}"] = [k in d for d in decided]
    bad = ~frame["stance"].isin(list(stance_names))
    if bad.any():
        row = frame[bad].iloc[0]
        _fail(row["where"], "stance", f"{row['stance']!r} is not in the label schema {list(stance_names)}")
    if "evidence" in frame:
        frame["evidence"] = [_as_mapping(v, w, "evidence") for v, w in zip(frame["evidence"], frame["where"])]
    else:
        frame["evidence"] = [{} for _ in range(len(frame))]
    _model_columns(frame)
    if "chars" not in frame:
        frame["chars"] = frame["text"].map(lambda t: len(t) if isinstance(t, str) else np.nan) if "text" in frame else np.nan
    for col in ("date", "time"):
        if col in frame:
            frame[col] = parse_dates(frame[col], frame["where"], col)
    if "date" not in frame:
        frame["date"] = pd.NaT
    return frame


def _model_columns(frame: pd.DataFrame) -> None:
    """``model_name``/``model_version`` from `framing score`'s columns or the log's ``model`` mapping."""
    if "model" in frame and "model_name" not in frame:
        models = [m if isinstance(m, dict) else {} for m in frame["model"]]
        frame["model_name"] = [m.get("name") for m in models]
        frame["model_version"] = [m.get("version") for m in models]
    for col in ("model_name", "model_version"):
        if col not in frame:
            frame[col] = None
        frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def read_predictions(path: str | Path, frame_names: Sequence[str], stance_names: Sequence[str]) -> pd.DataFrame:
    """Read and normalise the predictions at ``path`` (file or folder)."""
    return normalise(read_raw(path), frame_names, stance_names, path)


def read_log(path: str | Path, frame_names: Sequence[str], stance_names: Sequence[str]) -> pd.DataFrame:
    """The serving prediction log, normalised; every line needs ``time`` and ``chars``."""
    frame = read_predictions(path, frame_names, stance_names)
    for field in ("time", "chars"):
        if field not in frame:
            raise InputError(f"{path}: missing field {field!r}; expected the serving prediction log "
                             "(FRAMING_PREDICTION_LOG)")
    if frame["time"].isna().any():
        raise InputError(f"{frame.loc[frame['time'].isna(), 'where'].iloc[0]}: field 'time': missing")
    chars = pd.to_numeric(frame["chars"], errors="coerce")
    if chars.isna().any() or (chars < 0).any():
        row = frame[chars.isna() | (chars < 0)].iloc[0]
        _fail(row["where"], "chars", f"expected a non-negative integer, got {row['chars']!r}")
    frame["chars"] = chars.astype(int)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
