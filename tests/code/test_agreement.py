import json

import pytest

from pipeline.agreement import (agreement_markdown, agreement_report, cohen_kappa, krippendorff_alpha_nominal,
                                observed_agreement)
from pipeline.annotations import latest_judgements, parse_task
from tests.exports import ann, task


def test_alpha_known_value():
    # coincidences: o_aa=2, o_bb=2, o_ab=o_ba=1; n_a=n_b=3, n=6 → 1 - (2/6)/(18/30) = 4/9
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["a", "b"]]) == pytest.approx(4 / 9)


def test_alpha_perfect_and_undefined():
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == 1.0
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None  # no variation: undefined
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None  # nothing pairable


def test_alpha_below_chance_is_negative():
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0


def test_observed_agreement_ignores_single_annotations():
    assert observed_agreement([["a", "a"], ["a", "b"], ["c"]]) == 0.5
    assert observed_agreement([["a"]]) is None


def test_cohen_kappa_known_values():
    assert cohen_kappa([("a", "a"), ("b", "b"), ("a", "a"), ("b", "b")]) == 1.0
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    # 2x2 table [[20, 5], [10, 15]]: po = .7, pe = .5 -> .4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None and cohen_kappa([("a", "a")]) is None


def test_agreement_report_and_markdown(schema):
    a, b = {"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}
    tasks = [task(1, "p1", ann(1, a, ["transactional"], "neutral", schema=schema),
                  ann(2, b, ["transactional"], "critical", schema=schema)),
             task(2, "p2", ann(3, a, [], "critical", schema=schema), ann(4, b, [], "critical", schema=schema)),
             task(3, "p3", ann(5, a, [], "neutral", schema=schema), ann(6, b, cancelled=True, schema=schema)),
             task(4, "p4", ann(7, a, [], "supportive", schema=schema))]
    records = [r for t in tasks for r in parse_task(t, schema, "x.json")]
    report = agreement_report(latest_judgements(records), schema)
    assert report["passages_with_2plus_annotators"] == 2 and report["annotators"] == 2
    stance = report["labels"]["stance"]
    assert stance["units"] == 2 and stance["observed"] == 0.5
    assert stance["cohen_kappa"] == 0.0  # po = .5, pe = .5
    assert report["disagreements"] == [{"passage_id": "p1", "label": "stance", "values": {"a@x": "neutral", "b@x": "critical"}}]
    assert report["pairs"][0]["annotators"] == ["a@x", "b@x"]
    json.dumps(report)  # a DVC metrics file
    md = agreement_markdown(report, {"p1": {"text": "Kim met Putin."}})
    assert "| stance | 2 | 0.500 |" in md and "`p1` **stance**" in md and "Kim met Putin." in md
    empty = agreement_report({}, schema)
    assert empty["passages_with_2plus_annotators"] == 0
    assert "No passage has two annotators" in agreement_markdown(empty)
