"""The drift statistic: PSI on data drawn from the training distribution (no drift) and on data with a
known shift (drift), per frame, for the stance and for text length."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.drift import drift_table, length_counts, length_edges, psi
from pipeline.predictions import normalise
from pipeline.reference import Reference
from tests.prediction_fixtures import log_lines, prediction

FRAMES = ["isolated_pariah", "transactional", "strategic_partnership"]
STANCES = ["critical", "neutral", "supportive"]
THRESHOLD = 0.25


def test_psi_formula_and_properties():
    assert psi([500, 500], [500, 500]) == pytest.approx(0.0, abs=1e-12)
    assert psi([100, 100], [1000, 1000]) == pytest.approx(0.0, abs=1e-3)  # sizes differ, shares do not
    e, a = np.array([0.5, 0.5]), np.array([0.8, 0.2])  # large counts: smoothing is negligible
    exact = float(np.sum((a - e) * np.log(a / e)))
    assert psi(e * 1e6, a * 1e6) == pytest.approx(exact, rel=1e-4)
    assert psi([10, 0], [0, 10]) > 1 and math.isfinite(psi([10, 0], [0, 10]))  # empty bins stay finite
    assert psi([30, 70], [60, 40]) > psi([30, 70], [40, 60]) > 0  # grows with the shift
    with pytest.raises(ValueError):
        psi([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        psi([1, -2], [1, 2])


def test_length_bins_hold_every_text():
    rng = np.random.default_rng(0)
    ref = rng.integers(100, 900, 1000)
    edges = length_edges(ref, 10)
    assert len(edges) == 9
    counts = length_counts(ref, edges)
    assert counts.sum() == 1000 and counts.min() >= 90  # deciles
    assert length_counts([0, 10**6], edges).tolist() == [1] + [0] * 8 + [1]
    assert len(length_edges(np.full(50, 300), 10)) == 1  # constant lengths: duplicate edges dropped


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(1)
    return Reference(n=1000, frame_counts={"isolated_pariah": 250, "transactional": 340, "strategic_partnership": 250},
                     stance_counts={"critical": 320, "neutral": 490, "supportive": 190},
                     lengths=rng.normal(460, 120, 1000).clip(60), outlets=frozenset(), outlet_types=frozenset(),
                     years=(2000, 2025), source="test")


def served(ref: Reference, n: int, seed: int, frame_rates=None, stance_rates=None, length_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    frame_rates = frame_rates or {k: ref.frame_rate(k) for k in FRAMES}
    stance_rates = stance_rates or {s: ref.stance_rate(s) for s in STANCES}
    outputs = [prediction(rng, frame_rates, stance_rates) for _ in range(n)]
    texts = ["x" * int(max(5, rng.choice(ref.lengths) * length_scale)) for _ in range(n)]
    rows = pd.DataFrame(log_lines(outputs, texts)).assign(where=[f"log:{i + 1}" for i in range(n)])
    return normalise(rows, FRAMES, STANCES)


def by_name(rows):
    return {r.quantity: r for r in rows}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_no_drift_on_training_like_traffic(reference, seed):
    rows = by_name(drift_table(served(reference, 400, seed), reference, FRAMES, STANCES, THRESHOLD, 30, 10))
    assert set(rows) == {*FRAMES, "stance", "text length"}
    assert all(r.drifted is False for r in rows.values()), {q: r.psi for q, r in rows.items()}
    assert max(r.psi for r in rows.values()) < 0.1
    assert rows["transactional"].expected == [340, 660] and rows["transactional"].n == 400


def test_a_shifted_frame_is_flagged_and_the_others_are_not(reference):
    rates = {"isolated_pariah": 0.25, "transactional": 0.85, "strategic_partnership": 0.25}
    rows = by_name(drift_table(served(reference, 400, 5, frame_rates=rates), reference, FRAMES, STANCES,
                               THRESHOLD, 30, 10))
    assert rows["transactional"].drifted is True and rows["transactional"].psi > 0.5
    assert rows["isolated_pariah"].drifted is False and rows["stance"].drifted is False


def test_a_shifted_stance_and_longer_texts_are_flagged(reference):
    rows = by_name(drift_table(served(reference, 400, 6, stance_rates={"critical": 0.05, "neutral": 0.15, "supportive": 0.8},
                                      length_scale=4.0), reference, FRAMES, STANCES, THRESHOLD, 30, 10))
    assert rows["stance"].drifted is True
    assert rows["text length"].drifted is True and rows["text length"].observed[-1] > 300


def test_too_few_predictions_are_not_judged(reference):
    rates = {"isolated_pariah": 0.9, "transactional": 0.9, "strategic_partnership": 0.9}
    rows = drift_table(served(reference, 20, 7, frame_rates=rates), reference, FRAMES, STANCES, THRESHOLD, 30, 10)
    assert all(r.drifted is None for r in rows)
    assert by_name(rows)["transactional"].psi > THRESHOLD  # still computed and shown
