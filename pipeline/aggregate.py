"""Aggregations of prediction tables for the report and the monitor (pure functions on pandas).

Shares come with their counts and 95% Wilson intervals (``pipeline.metrics.wilson_interval``), so a
month of four passages is not read like a month of four hundred. Time buckets are calendar periods
(a week starts on Monday); the unit is chosen from the data's span.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.metrics import wilson_interval

UNITS = ("minute", "hour", "day", "week", "month", "year")
_FIXED = {"minute": pd.Timedelta(minutes=1), "hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1),
          "week": pd.Timedelta(weeks=1)}
_FORMAT = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d",
           "month": "%Y-%m", "year": "%Y"}


def bucket(times: pd.Series, unit: str) -> pd.Series:
    """The start of each time's calendar ``unit`` (NaT stays NaT)."""
    times = pd.to_datetime(times)
    if unit in ("minute", "hour", "day"):
        return times.dt.floor({"minute": "min", "hour": "h", "day": "D"}[unit])
    if unit == "week":
        return times.dt.to_period("W-SUN").dt.start_time
    if unit in ("month", "year"):
        return times.dt.to_period("M" if unit == "month" else "Y").dt.start_time
    raise ValueError(f"unknown time unit {unit!r}; expected one of {UNITS}")


def bucket_count(times: pd.Series, unit: str) -> int:
    """How many ``unit`` buckets the span from the earliest to the latest time covers (0 without times)."""
    starts = bucket(pd.Series(pd.to_datetime(times)).dropna(), unit)
    if starts.empty:
        return 0
    first, last = starts.min(), starts.max()
    if unit == "year":
        return last.year - first.year + 1
    if unit == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return int((last - first) / _FIXED[unit]) + 1


def choose_unit(times: pd.Series, units: Sequence[str], max_buckets: int) -> str:
    """The finest of ``units`` (ordered fine to coarse) whose buckets over the span number at most
    ``max_buckets``; the coarsest when none does."""
    for unit in units:
        if bucket_count(times, unit) <= max_buckets:
            return unit
    return units[-1]


def bucket_label(start: pd.Timestamp, unit: str) -> str:
    return pd.Timestamp(start).strftime(_FORMAT[unit])


def all_buckets(times: pd.Series, unit: str) -> list[pd.Timestamp]:
    """Every bucket start from the earliest to the latest time, empty ones included (a gap stays visible)."""
    starts = bucket(pd.Series(pd.to_datetime(times)).dropna(), unit)
    if starts.empty:
        return []
    freq = {"minute": "min", "hour": "h", "day": "D", "week": "W-MON", "month": "MS", "year": "YS"}[unit]
    return list(pd.date_range(starts.min(), starts.max(), freq=freq))


def shares(indicators: pd.DataFrame, groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group and label: ``n`` (rows in the group), ``k`` (rows where the label's indicator is true),
    ``share`` = k/n and its Wilson interval ``lo``/``hi``. Long format, groups in sorted order, labels
    in column order. ``groups`` (same index) holds the grouping columns; None = one overall group."""
    labels = list(indicators.columns)
    data = indicators.astype(int)
    by = [] if groups is None else list(groups.columns)
    if by:
        data = pd.concat([groups, data], axis=1).dropna(subset=by)
        grouped = data.groupby(by, observed=True, sort=True)
        n, k = grouped.size(), grouped[labels].sum()
    else:
        n, k = pd.Series([len(data)]), data[labels].sum().to_frame().T
    rows = []
    for key in n.index:
        key_values = key if isinstance(key, tuple) else (key,)
        for label in labels:
            kk, nn = int(k.loc[key, label]), int(n.loc[key])
            lo, hi = wilson_interval(kk, nn)
            rows.append({**dict(zip(by, key_values)), "label": label, "n": nn, "k": kk,
                         "share": kk / nn if nn else float("nan"), "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=[*by, "label", "n", "k", "share", "lo", "hi"])


def frame_indicators(preds: pd.DataFrame, frame_names: Sequence[str]) -> pd.DataFrame:
    """One boolean column per frame: the model decided it."""
    return pd.DataFrame({k: preds[f"has_{k}"].astype(bool) for k in frame_names}, index=preds.index)


def stance_indicators(preds: pd.DataFrame, stance_names: Sequence[str]) -> pd.DataFrame:
    """One boolean column per stance: the passage's predicted stance."""
    return pd.DataFrame({s: preds["stance"] == s for s in stance_names}, index=preds.index)


def cooccurrence(preds: pd.DataFrame, frame_names: Sequence[str]) -> pd.DataFrame:
    """Passages with both frames (diagonal: with that frame), frames × frames."""
    X = frame_indicators(preds, frame_names).to_numpy(dtype=int)
    return pd.DataFrame(X.T @ X, index=list(frame_names), columns=list(frame_names))


NO_FRAME = "(no frame)"


def stance_within_frames(preds: pd.DataFrame, frame_names: Sequence[str], stance_names: Sequence[str]) -> pd.DataFrame:
    """Stance shares among the passages given each frame, and among those given none (``NO_FRAME``)."""
    frames = frame_indicators(preds, frame_names)
    stance = stance_indicators(preds, stance_names)
    parts = []
    for name, mask in [*((k, frames[k]) for k in frame_names), (NO_FRAME, ~frames.any(axis=1))]:
        table = shares(stance[mask])
        table.insert(0, "frame", name)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def top_phrases(preds: pd.DataFrame, frame: str, n: int, common: frozenset[str] = frozenset()) -> list[tuple[str, int]]:
    """The ``n`` evidence phrases most often given for ``frame`` (ties: alphabetical), leaving out
    phrases made only of ``common`` words (a linear model's evidence often includes "from" or "most",
    which tell a reader nothing)."""
    counts = Counter(p for ev in preds["evidence"] for p in (ev.get(frame) or [])
                     if isinstance(p, str) and not set(p.lower().split()) <= common)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def examples(preds: pd.DataFrame, frame: str, n: int) -> dict[str, pd.DataFrame]:
    """Passages to read for ``frame``: ``confident`` (highest probability among those given it),
    ``just_in`` (lowest probability still given it) and ``just_out`` (highest probability not given it)."""
    score, has = preds[f"frame_{frame}"], preds[f"has_{frame}"].astype(bool)
    given, not_given = preds[has], preds[~has]
    confident = given.loc[score[has].sort_values(ascending=False, kind="stable").index[:n]]
    rest = given.drop(confident.index)
    just_in = rest.loc[score[rest.index].sort_values(kind="stable").index[:n]]
    just_out = not_given.loc[score[~has].sort_values(ascending=False, kind="stable").index[:n]]
    return {"confident": confident, "just_in": just_in, "just_out": just_out}


def top_values(values: pd.Series, n: int) -> tuple[list[str], list[str]]:
    """The ``n`` most frequent non-empty values (ties: alphabetical) and the rest."""
    counts = values.dropna().astype(str)
    counts = counts[counts.str.strip() != ""].value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [k for k, _ in order[:n]], [k for k, _ in order[n:]]


def confidences(preds: pd.DataFrame, frame_names: Sequence[str], stance_names: Sequence[str]) -> pd.Series:
    """Per row, the prediction's confidence in [0, 1] (``pipeline.labelstudio.prediction.confidence``:
    1 - mean normalised entropy, the score Label Studio shows)."""
    from pipeline.labelstudio.prediction import confidence

    frames = preds[[f"frame_{k}" for k in frame_names]].to_numpy()
    stance = preds[[f"stance_{s}" for s in stance_names]].to_numpy()
    scores = [confidence({"frames": dict(zip(frame_names, f)), "stance_scores": dict(zip(stance_names, s))})
              for f, s in zip(frames, stance)]
    return pd.Series(np.asarray(scores, dtype=float), index=preds.index)


def display_names(labels: Sequence, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """key → display name for schema ``Label``s (plus any ``extra`` keys)."""
    return {**{label.key: label.display for label in labels}, **(extra or {})}
