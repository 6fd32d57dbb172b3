"""Metric helpers shared by the train and evaluate stages (pure functions on arrays).

Conventions: frames are (n, n_labels) 0/1 matrices, stance is a vector of
integer label codes with (n, n_classes) probabilities. Undefined F1 (no true
and no predicted positives) counts as 0, so a label that never occurs costs
every candidate the same.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

DEFAULT_THRESHOLD = 0.5


def frame_metrics(Y: np.ndarray, D: np.ndarray, names: Sequence[str]) -> dict:
    """Micro/macro F1, subset accuracy, Hamming loss and per-label P/R/F1 for multi-label decisions."""
    Y, D = np.asarray(Y, dtype=int), np.asarray(D, dtype=int)
    p, r, f, s = precision_recall_fscore_support(Y, D, average=None, zero_division=0.0)
    return {
        "micro_f1": float(f1_score(Y, D, average="micro", zero_division=0.0)),
        "macro_f1": float(f1_score(Y, D, average="macro", zero_division=0.0)),
        "subset_accuracy": float(accuracy_score(Y, D)),
        "hamming_loss": float(hamming_loss(Y, D)),
        "per_label": {n: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
                      for j, n in enumerate(names)},
    }


def on_topic(y: np.ndarray) -> np.ndarray:
    """Rows that have a stance: off-topic passages carry stance code -1 and count for frames only."""
    return np.asarray(y, dtype=int) >= 0


def stance_metrics(y: np.ndarray, proba: np.ndarray) -> dict:
    """Accuracy and macro F1 (over the classes present in truth or prediction) of argmax stance,
    over the rows that have a stance."""
    keep = on_topic(y)
    y = np.asarray(y, dtype=int)[keep]
    pred = np.argmax(np.asarray(proba)[keep], axis=1) if keep.any() else np.zeros(0, dtype=int)
    if not len(y):
        return {"accuracy": 0.0, "macro_f1": 0.0}
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0.0))}


def selection_score(frames_macro_f1: float, stance_macro_f1: float, frames_weight: float) -> float:
    """score = w · frames macro F1 (tuned thresholds) + (1 − w) · stance macro F1."""
    return float(frames_weight * frames_macro_f1 + (1.0 - frames_weight) * stance_macro_f1)


def split_scores(Y: np.ndarray, y: np.ndarray, Pf: np.ndarray, Ps: np.ndarray, thresholds: Sequence[float],
                 frame_names: Sequence[str], frames_weight: float) -> dict:
    """Frame metrics at ``thresholds``, stance metrics, and the selection score of one set of predictions."""
    fm = frame_metrics(Y, np.asarray(Pf) >= np.asarray(thresholds), frame_names)
    sm = stance_metrics(y, Ps)
    return {"frames": fm, "stance": sm, "score": selection_score(fm["macro_f1"], sm["macro_f1"], frames_weight)}


def tune_thresholds(Y: np.ndarray, P: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """Per label, the grid threshold maximising F1 of (P >= t) against Y.

    Ties (a flat F1 plateau, common on tiny data) resolve to the median of the
    tied thresholds, which sits in the middle of the plateau; a label with no
    positives keeps DEFAULT_THRESHOLD.
    """
    Y, P = np.asarray(Y, dtype=int), np.asarray(P, dtype=float)
    grid = np.asarray(sorted(grid), dtype=float)
    out = np.full(Y.shape[1], DEFAULT_THRESHOLD)
    for j in range(Y.shape[1]):
        y = Y[:, j]
        if y.sum() == 0:
            continue
        D = P[:, j][None, :] >= grid[:, None]  # thresholds × samples
        tp = (D & (y == 1)).sum(axis=1)
        f1 = _f1(tp, (D & (y == 0)).sum(axis=1), y.sum() - tp)
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[j] = float(grid[best[(len(best) - 1) // 2]])
    return out


def brier_frames(Y: np.ndarray, P: np.ndarray) -> float:
    """Mean over labels of the binary Brier score."""
    return float(np.mean((np.asarray(P, dtype=float) - np.asarray(Y, dtype=float)) ** 2)) if np.size(Y) else float("nan")


def brier_stance(y: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score over the rows with a stance: mean squared distance to the one-hot truth."""
    keep = on_topic(y)
    y, proba = np.asarray(y, dtype=int)[keep], np.asarray(proba)[keep]
    onehot = np.eye(proba.shape[1])[y]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1))) if len(y) else float("nan")


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-width reliability bins: mean predicted probability vs observed frequency (non-empty bins)."""
    y, p = np.asarray(y, dtype=float).ravel(), np.asarray(p, dtype=float).ravel()
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append({"bin": b, "lower": b / bins, "upper": (b + 1) / bins, "mean_predicted": float(p[m].mean()),
                         "fraction_positive": float(y[m].mean()), "count": int(m.sum())})
    return rows


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (sensible for small n and proportions near 0 or 1)."""
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(fn, n: int, seed: int, reps: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(indices)`` over resamples of ``n`` rows (deterministic in seed)."""
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = np.array([fn(rng.integers(0, n, n)) for _ in range(reps)])
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def _f1(tp, fp, fn):
    """F1 per entry from counts; 0 where undefined (sklearn's ``zero_division=0``)."""
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def _macro_f1(Y: np.ndarray, D: np.ndarray) -> float:
    """Macro F1 over the columns of boolean truth ``Y`` and decisions ``D`` (numpy only: used per resample)."""
    return float(np.mean(_f1((Y & D).sum(axis=0), (D & ~Y).sum(axis=0), (Y & ~D).sum(axis=0))))


def _classes_macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Multi-class macro F1 over the classes in truth or prediction, as ``stance_metrics``."""
    classes = np.union1d(y, pred)
    return _macro_f1(y[:, None] == classes, pred[:, None] == classes)


def paired_gain(Y: np.ndarray, y: np.ndarray, a: tuple, b: tuple, seed: int, reps: int = 1000) -> dict:
    """Frames and stance macro-F1 of model ``a`` minus model ``b`` on the same rows, with 95% percentile
    bootstrap intervals over passages (both models scored on each resample).

    ``a`` and ``b`` are (frame decisions (n, labels), stance probabilities (n, classes)). Same
    definitions as ``frame_metrics``/``stance_metrics``; deterministic in ``seed``.
    """
    Y = np.asarray(Y, dtype=bool)
    y = np.asarray(y, dtype=int)
    (Da, Pa), (Db, Pb) = a, b
    Da, Db = np.asarray(Da, dtype=bool), np.asarray(Db, dtype=bool)
    sa, sb = np.argmax(Pa, axis=1), np.argmax(Pb, axis=1)
    has = on_topic(y)

    def stance_gain(i):  # over the resampled rows that have a stance
        i = i[has[i]]
        return _classes_macro_f1(y[i], sa[i]) - _classes_macro_f1(y[i], sb[i]) if len(i) else 0.0

    out = {"resamples": reps, "n": int(len(y)), "n_stance": int(has.sum())}
    for task, fn in (("frames", lambda i: _macro_f1(Y[i], Da[i]) - _macro_f1(Y[i], Db[i])), ("stance", stance_gain)):
        out[f"{task}_macro_f1_gain"] = fn(np.arange(len(y)))
        out[f"{task}_ci95"] = list(bootstrap_interval(fn, len(y), seed, reps))
    return out
