"""Inter-annotator agreement: observed agreement and Krippendorff's alpha (nominal)."""

from __future__ import annotations

from collections import Counter
from itertools import permutations
from typing import Hashable, Sequence


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data.

    ``units`` holds, per item, the values the annotators gave (missing ones left
    out). Items with fewer than two values are not pairable and are ignored.
    Returns None when alpha is undefined (fewer than two pairable values, or a
    single value used throughout, so expected disagreement is zero).
    """
    coincidences: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for a, b in permutations(values, 2):
            coincidences[(a, b)] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (a, _), weight in coincidences.items():
        totals[a] += weight
    n = sum(totals.values())
    if n < 2:
        return None
    observed = sum(w for (a, b), w in coincidences.items() if a != b) / n
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n * (n - 1))
    if expected == 0:
        return None
    return 1.0 - observed / expected


def observed_agreement(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of multiply-annotated items on which every annotator gave the same value."""
    pairable = [values for values in units if len(values) >= 2]
    if not pairable:
        return None
    return sum(len(set(values)) == 1 for values in pairable) / len(pairable)
