"""Drift of served predictions from the training data: the population stability index (PSI).

PSI = Σ (a_i − e_i) · ln(a_i / e_i) over the bins of a distribution, ``e`` the training (expected)
and ``a`` the observed shares. Unlike a chi-square test it does not grow with the number of
requests, so one threshold serves a quiet hour and a busy month; the usual reading is < 0.1 stable,
0.1–0.25 moderate, > 0.25 large. Shares are smoothed with half a count per bin, so an empty bin
gives a finite value.

One statistic per label: each frame's decided rate against its training prevalence (two bins:
given / not given), the stance's class distribution against the training one, and the texts'
length against the training texts' (quantile bins of the training lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.reference import Reference


def psi(expected: Sequence[float], observed: Sequence[float]) -> float:
    """Population stability index of ``observed`` counts against ``expected`` counts (same bins)."""
    e, a = np.asarray(expected, dtype=float), np.asarray(observed, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or len(e) < 2:
        raise ValueError("psi: expected two count vectors of the same length >= 2")
    if (e < 0).any() or (a < 0).any():
        raise ValueError("psi: counts must be non-negative")
    e = (e + 0.5) / (e.sum() + 0.5 * len(e))
    a = (a + 0.5) / (a.sum() + 0.5 * len(a))
    return float(np.sum((a - e) * np.log(a / e)))


def length_edges(reference_lengths: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the training lengths' quantiles (duplicates dropped)."""
    qs = np.quantile(np.asarray(reference_lengths, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def length_counts(lengths: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``lengths`` in the bins ``edges`` delimit (len(edges) + 1 bins; right edge inclusive)."""
    idx = np.searchsorted(edges, np.asarray(lengths, dtype=float), side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


@dataclass(frozen=True)
class Drift:
    """One row of the drift table."""

    quantity: str         # frame key, "stance" or "text length"
    kind: str             # "frame", "stance", "input"
    expected: list        # training counts per bin
    observed: list        # logged counts per bin
    bins: list[str]       # bin names
    psi: float
    drifted: bool | None  # None: too few predictions to judge

    @property
    def n(self) -> int:
        return int(sum(self.observed))


def drift_table(log: pd.DataFrame, ref: Reference, frame_names: Sequence[str], stance_names: Sequence[str],
                threshold: float, min_predictions: int, length_bins: int) -> list[Drift]:
    """PSI of each frame, of the stance and of the text length in ``log`` (a normalised prediction
    table) against the training data ``ref``; ``drifted`` = PSI > ``threshold`` when the log has at
    least ``min_predictions`` rows."""
    n = len(log)
    judged = n >= min_predictions

    def row(quantity, kind, expected, observed, bins):
        value = psi(expected, observed)
        return Drift(quantity, kind, [int(x) for x in expected], [int(x) for x in observed], bins, value,
                     (value > threshold) if judged else None)

    rows = []
    for k in frame_names:
        given = int(log[f"has_{k}"].sum())
        rows.append(row(k, "frame", [ref.frame_counts[k], ref.n - ref.frame_counts[k]], [given, n - given],
                        ["given", "not given"]))
    counts = log["stance"].value_counts()
    rows.append(row("stance", "stance", [ref.stance_counts[s] for s in stance_names],
                    [int(counts.get(s, 0)) for s in stance_names], list(stance_names)))
    edges = length_edges(ref.lengths, length_bins)
    names = _bin_names(edges)
    rows.append(row("text length", "input", length_counts(ref.lengths, edges), length_counts(log["chars"], edges), names))
    return rows


def _bin_names(edges: np.ndarray) -> list[str]:
    bounds = [int(e) for e in edges]
    if not bounds:
        return ["all"]
    return ([f"≤{bounds[0]}"] + [f"{a + 1}–{b}" for a, b in zip(bounds, bounds[1:])] + [f">{bounds[-1]}"])
