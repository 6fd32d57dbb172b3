"""Aggregations behind `framing report` and `framing monitor`: time buckets, shares with Wilson
intervals, co-occurrence, stance within frames, evidence and examples."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import aggregate as agg
from pipeline.metrics import wilson_interval
from pipeline.predictions import normalise
from tests.prediction_fixtures import passages

FRAMES = ["isolated_pariah", "transactional", "strategic_partnership"]
STANCES = ["critical", "neutral", "supportive"]


def ts(*values):
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


def test_buckets_are_calendar_periods():
    times = ts("2024-06-19 13:47:05", "2024-06-30 23:59:59", "2024-07-01 00:00:00", None)
    assert list(agg.bucket(times, "month")[:3]) == [pd.Timestamp("2024-06-01")] * 2 + [pd.Timestamp("2024-07-01")]
    assert agg.bucket(times, "month").isna().iloc[3]
    assert agg.bucket(times, "year").iloc[0] == pd.Timestamp("2024-01-01")
    assert agg.bucket(times, "week").iloc[0] == pd.Timestamp("2024-06-17")  # a Monday
    assert agg.bucket(times, "hour").iloc[0] == pd.Timestamp("2024-06-19 13:00")
    assert agg.bucket(times, "minute").iloc[0] == pd.Timestamp("2024-06-19 13:47")
    assert agg.bucket_label(pd.Timestamp("2024-06-01"), "month") == "2024-06"
    assert agg.bucket_label(pd.Timestamp("2024-01-01"), "year") == "2024"
    with pytest.raises(ValueError, match="unknown time unit"):
        agg.bucket(times, "fortnight")


@pytest.mark.parametrize("first, last, unit, count", [
    ("2024-01-31", "2024-02-01", "month", 2),
    ("2023-01-15", "2025-12-01", "month", 36),
    ("2000-07-19", "2025-09-03", "year", 26),
    ("2026-11-01 10:00", "2026-11-01 10:59:59", "minute", 60),
    ("2026-11-01 10:00", "2026-11-03 09:00", "hour", 48),
    ("2026-11-02", "2026-11-15", "week", 2),  # Monday to the Sunday of the next week
])
def test_bucket_count_spans_first_to_last(first, last, unit, count):
    assert agg.bucket_count(ts(first, last), unit) == count


def test_unit_chosen_from_the_span():
    assert agg.choose_unit(ts("2023-01-15", "2025-12-01"), ("month", "year"), 36) == "month"
    assert agg.choose_unit(ts("2023-01-15", "2026-01-01"), ("month", "year"), 36) == "year"  # 37 months
    assert agg.choose_unit(ts("2000-07-19", "2025-09-03"), ("month", "year"), 36) == "year"
    units = ("minute", "hour", "day", "week", "month")
    assert agg.choose_unit(ts("2026-11-01 10:00", "2026-11-01 10:20"), units, 48) == "minute"
    assert agg.choose_unit(ts("2026-11-01", "2026-11-30"), units, 48) == "day"
    assert agg.choose_unit(ts("2020-01-01", "2026-01-01"), units, 48) == "month"  # coarsest even when over


def test_all_buckets_keep_empty_months_visible():
    starts = agg.all_buckets(ts("2024-01-10", "2024-04-02"), "month")
    assert [agg.bucket_label(s, "month") for s in starts] == ["2024-01", "2024-02", "2024-03", "2024-04"]


def test_shares_count_and_wilson_interval_per_group():
    flags = pd.DataFrame({"a": [1, 1, 0, 0, 1, 0], "b": [0, 0, 0, 1, 1, 1]}).astype(bool)
    groups = pd.DataFrame({"g": ["y", "x", "x", "y", "y", "y"]})
    out = agg.shares(flags, groups)
    assert list(out.columns) == ["g", "label", "n", "k", "share", "lo", "hi"]
    assert out[["g", "label"]].values.tolist() == [["x", "a"], ["x", "b"], ["y", "a"], ["y", "b"]]
    row = out[(out.g == "y") & (out.label == "b")].iloc[0]
    assert (row.n, row.k, row.share) == (4, 3, 0.75)
    assert (row.lo, row.hi) == pytest.approx(wilson_interval(3, 4))
    assert row.lo < 0.75 < row.hi
    overall = agg.shares(flags)
    assert overall.set_index("label")["k"].to_dict() == {"a": 3, "b": 3}
    assert set(overall["n"]) == {6}


def test_thin_groups_get_wide_intervals():
    flags = pd.DataFrame({"a": [True] * 2 + [False] * 2 + [True] * 200 + [False] * 200})
    groups = pd.DataFrame({"g": ["thin"] * 4 + ["thick"] * 400})
    out = agg.shares(flags, groups).set_index("g")
    assert out.loc["thin", "share"] == out.loc["thick", "share"] == 0.5
    assert out.loc["thin", "hi"] - out.loc["thin", "lo"] > 5 * (out.loc["thick", "hi"] - out.loc["thick", "lo"])


@pytest.fixture(scope="module")
def preds():
    rows = passages(600, 3, FRAMES, STANCES, rising="transactional")
    return normalise(pd.DataFrame(rows).assign(where=[f"t:{i}" for i in range(600)]), FRAMES, STANCES)


def test_a_rising_frame_rises_by_month(preds):
    months = agg.bucket(preds["date"], "month")
    table = agg.shares(agg.frame_indicators(preds, FRAMES), pd.DataFrame({"m": months}))
    rising = table[table.label == "transactional"].sort_values("m")
    steady = table[table.label == "isolated_pariah"]
    assert rising["share"].iloc[:3].mean() < 0.3 < 0.6 < rising["share"].iloc[-3:].mean()
    assert steady["share"].between(0.05, 0.6).all()


def test_cooccurrence_counts_passages_with_both(preds):
    co = agg.cooccurrence(preds, FRAMES)
    has = {k: preds[f"has_{k}"] for k in FRAMES}
    assert co.loc["transactional", "transactional"] == has["transactional"].sum()
    assert co.loc["transactional", "isolated_pariah"] == (has["transactional"] & has["isolated_pariah"]).sum()
    assert (co.to_numpy() == co.to_numpy().T).all()


def test_stance_within_each_frame_and_none(preds):
    table = agg.stance_within_frames(preds, FRAMES, STANCES)
    assert set(table["frame"]) == {*FRAMES, agg.NO_FRAME}
    for _, part in table.groupby("frame"):
        assert part["share"].sum() == pytest.approx(1.0)
    none = ~preds[[f"has_{k}" for k in FRAMES]].any(axis=1)
    assert table[table.frame == agg.NO_FRAME]["n"].iloc[0] == none.sum()
    crit = table[(table.frame == "transactional") & (table.label == "critical")].iloc[0]
    assert crit.k == ((preds.stance == "critical") & preds.has_transactional).sum()


def test_top_phrases_and_examples(preds):
    phrases = agg.top_phrases(preds, "transactional", 2)
    assert len(phrases) == 2 and phrases[0][1] >= phrases[1][1]
    assert {p for p, _ in phrases} <= {"shells", "in exchange", "oil"}
    sets = agg.examples(preds, "transactional", 3)
    score = preds["frame_transactional"]
    given = preds[preds.has_transactional]
    assert list(sets["confident"].index) == list(score[given.index].nlargest(3).index)
    assert score[sets["just_in"].index].max() <= score[sets["confident"].index].min()
    assert not set(sets["confident"].index) & set(sets["just_in"].index)
    assert not sets["just_out"]["has_transactional"].any()
    assert score[sets["just_out"].index].min() >= score[~preds.has_transactional].quantile(0.9)


def test_examples_when_a_frame_is_never_given(preds):
    none = preds.assign(has_transactional=False)
    sets = agg.examples(none, "transactional", 3)
    assert sets["confident"].empty and sets["just_in"].empty and len(sets["just_out"]) == 3
    assert agg.top_phrases(none.assign(evidence=[{}] * len(none)), "transactional", 5) == []


def test_confidence_is_the_label_studio_score(preds):
    from pipeline.labelstudio.prediction import confidence

    conf = agg.confidences(preds, FRAMES, STANCES)
    row = preds.iloc[7]
    expected = confidence({"frames": {k: row[f"frame_{k}"] for k in FRAMES},
                           "stance_scores": {s: row[f"stance_{s}"] for s in STANCES}})
    assert conf.iloc[7] == pytest.approx(expected)
    assert conf.between(0, 1).all()


def test_top_values_ranks_and_splits():
    top, rest = agg.top_values(pd.Series(["b", "a", "a", "c", None, "", "b", "a"]), 2)
    assert top == ["a", "b"] and rest == ["c"]
