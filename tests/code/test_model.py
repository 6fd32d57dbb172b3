"""FramingModel, heads and the pyfunc wrapper: behaviour on small, fully known inputs."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB

from pipeline.candidates import Context, candidate
from pipeline.config import FeatureParams
from pipeline.errors import InputError
from pipeline.mlflow_model import records_frame, texts_from_input
from pipeline.model import CalibratedLinearSVC, FramingModel, MultiLabelHead, StanceHead
from pipeline.schema import load_label_schema
from tests.fixtures_train import LABELS, build_records, training_arrays

SCHEMA = load_label_schema(LABELS)
FRAMES, STANCES = SCHEMA.frame_names, SCHEMA.stance_names


def _fit(kind: str, hp: dict | None = None, thresholds=(0.5, 0.5, 0.5), records=None) -> FramingModel:
    records = records or build_records(48, seed=3)
    texts, Y, y = training_arrays(records, len(FRAMES))
    fitted = candidate(kind, **(hp or {})).fit(texts, Y, y, Context(SCHEMA, tuple(FRAMES), tuple(STANCES),
                                                                  FeatureParams(), seed=0))
    return FramingModel(name=kind, schema_version=1, frame_names=FRAMES, stance_names=STANCES,
                        featurizer=fitted.featurizer, frames_head=fitted.frames_head, stance_head=fitted.stance_head,
                        thresholds=thresholds, evidence_top_n=3)


@pytest.fixture(scope="module")
def logreg() -> FramingModel:
    return _fit("logreg", {"C": 10.0})


TEXTS = ["Moscow wants to buy munitions and shells in exchange for grain and oil.",
         "The isolated pariah regime, an international outcast, is shunned.",
         "A comprehensive strategic partnership and a mutual defence treaty."]


def test_predict_record_shape_and_consistency(logreg):
    out = logreg.predict(TEXTS)
    assert len(out) == 3
    pf, ps = logreg.predict_proba(TEXTS)
    assert pf.shape == (3, 3) and ps.shape == (3, 3)
    assert np.allclose(ps.sum(axis=1), 1.0)
    for i, rec in enumerate(out):
        assert list(rec["frames"]) == FRAMES and list(rec["stance_scores"]) == STANCES
        assert np.allclose(list(rec["frames"].values()), pf[i])
        assert rec["decided_frames"] == [f for j, f in enumerate(FRAMES) if pf[i, j] >= 0.5]
        assert rec["stance"] == STANCES[int(np.argmax(ps[i]))]
        assert set(rec["evidence"]) == set(rec["decided_frames"])
    # The cue-built texts are learnable: each one's own frame is decided.
    assert "transactional" in out[0]["decided_frames"]
    assert "isolated_pariah" in out[1]["decided_frames"]
    assert "strategic_partnership" in out[2]["decided_frames"]


def test_evidence_is_present_words_ranked_by_contribution(logreg):
    rec = logreg.predict([TEXTS[0]])[0]
    words = rec["evidence"]["transactional"]
    assert 0 < len(words) <= 3
    low = TEXTS[0].lower()
    assert all(w in low for w in words)
    # Recompute coef × tf-idf for the evidence words: must be positive and descending.
    X = logreg.featurizer.transform([TEXTS[0]]).tocsr()
    names = list(logreg.featurizer.get_feature_names_out())
    j = FRAMES.index("transactional")
    contrib = [X[0, names.index("word__" + w)] * logreg.frames_head.explain_coef_[j, names.index("word__" + w)]
               for w in words]
    assert all(c > 0 for c in contrib) and contrib == sorted(contrib, reverse=True)


def test_stacked_logreg_equals_per_label_models(logreg):
    head = logreg.frames_head
    assert head.stacked_
    X = logreg.featurizer.transform(TEXTS)
    loop = np.column_stack([e.predict_proba(X)[:, 1] for e in head.estimators_])
    assert np.allclose(head.predict_proba(X), loop)


def test_thresholds_change_decisions():
    strict = _fit("logreg", {"C": 10.0}, thresholds=(0.99, 0.99, 0.99))
    lax = _fit("logreg", {"C": 10.0}, thresholds=(0.01, 0.01, 0.01))
    assert all(r["decided_frames"] == [] for r in strict.predict(TEXTS))
    assert all(r["decided_frames"] == FRAMES for r in lax.predict(TEXTS))


def test_multilabel_head_constant_label_and_nonlinear_path():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])  # label 1 never, label 2 always
    head = MultiLabelHead(ComplementNB()).fit(X, Y)
    P = head.predict_proba(X)
    assert not head.stacked_
    assert np.all(P[:, 1] == 0.0) and np.all(P[:, 2] == 1.0)
    assert P[0, 0] > P[1, 0]


def test_stance_head_single_class_and_missing_class():
    X = np.eye(4)
    single = StanceHead(LogisticRegression(), n_classes=3).fit(X, [2, 2, 2, 2])
    assert np.allclose(single.predict_proba(X), [[0, 0, 1]] * 4)
    two = StanceHead(LogisticRegression(), n_classes=3).fit(X, [0, 2, 0, 2])
    P = two.predict_proba(X)
    assert P.shape == (4, 3) and np.all(P[:, 1] == 0) and np.allclose(P.sum(axis=1), 1)


def test_calibrated_svc_falls_back_on_singleton_class():
    X = np.array([[1.0, 0], [0.9, 0.1], [0.8, 0], [0, 1.0]])
    clf = CalibratedLinearSVC(cv=3).fit(X, [0, 0, 0, 1])
    assert clf.calibrated_ is False
    P = clf.predict_proba(X)
    assert np.allclose(P.sum(axis=1), 1) and P[3, 1] > P[0, 1]
    big = CalibratedLinearSVC(cv=2).fit(np.vstack([X, X]), [0, 0, 0, 1] * 2)
    assert big.calibrated_ is True


def test_lexicon_evidence_is_matched_cues():
    model = _fit("lexicon")
    rec = model.predict(["They want to buy munitions; a rogue, isolated pariah."])[0]
    assert set(rec["evidence"]["transactional"]) == {"buy", "munitions"}
    assert set(rec["evidence"]["isolated_pariah"]) == {"rogue", "isolated", "pariah"}
    assert rec["frames"]["strategic_partnership"] == 0.0


def test_most_frequent_baseline_is_constant():
    model = _fit("most_frequent")
    P, _ = model.predict_proba(TEXTS + ["anything at all"])
    assert np.allclose(P, P[0])
    assert all(r["evidence"] == {k: [] for k in r["decided_frames"]} for r in model.predict(TEXTS))
    assert isinstance(model.stance_head.estimator_, DummyClassifier)


def test_pickle_roundtrip_and_normalisation(logreg):
    clone = pickle.loads(pickle.dumps(logreg))
    assert clone.predict(TEXTS) == logreg.predict(TEXTS)
    # Raw text with zero-width characters and odd spacing normalises to the same prediction.
    messy = ["Moscow  wants to\u200b buy munitions and shells in exchange for grain and oil."]
    assert np.allclose(clone.predict_proba(messy)[0], logreg.predict_proba(TEXTS[:1])[0])


def test_bad_input_is_rejected(logreg):
    with pytest.raises(InputError, match="single string"):
        logreg.predict("a string")
    with pytest.raises(InputError, match=r"texts\[1\]"):
        logreg.predict(["ok", 3])


def test_pyfunc_input_forms_and_output_frame(logreg):
    assert texts_from_input(np.array(["a", "b"])) == ["a", "b"]
    assert texts_from_input(pd.DataFrame({"text": ["a"], "x": [1]})) == ["a"]
    assert texts_from_input(pd.DataFrame({"body": ["a"]})) == ["a"]
    assert texts_from_input(pd.Series(["a"])) == ["a"]
    with pytest.raises(InputError):
        texts_from_input(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    df = records_frame(logreg.predict(TEXTS))
    assert list(df.columns) == ["stance", "decided_frames", "frames", "stance_scores", "evidence"]
    assert len(df) == 3 and all(isinstance(v, str) for v in df.iloc[0])


def test_cue_index_matches_exactly_what_searching_every_cue_finds():
    from pipeline.model import CueFeaturizer

    cues = ["sanction-hit", "aren't great", "strategic partnership", "strategic", "buy", "in return", "anti-imperialist",
            "heavily sanctioned", "sanctions", "hold hands"]
    texts = ["Sanction-hit states buy arms; buying more in return.", "They aren't great, a strategic partnership!",
             "anti-imperialist front, heavily sanctioned regime and sanctions", "no cue here", "strategic-partnership",
             "they hold hands", "holds hands", "BUY"]
    featurizer = CueFeaturizer(cues).fit()
    naive = np.array([[bool(p.search(t.lower())) for p in featurizer.patterns_] for t in texts], dtype=float)
    assert (featurizer.transform(texts).toarray() == naive).all()
    assert naive.sum() >= 10  # the cases above really exercise matching
