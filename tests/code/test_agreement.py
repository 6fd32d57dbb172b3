import pytest

from pipeline.agreement import krippendorff_alpha_nominal, observed_agreement


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
