"""Train stage: params, threshold tuning, promotion rule, CV on degenerate data, end-to-end run with MLflow."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.candidates import Context, cross_validate, expand
from pipeline.config import TrainParams
from pipeline.typed import build
from pipeline.errors import InputError
from pipeline.fsutil import project_root
from pipeline.metrics import frame_metrics, selection_score, tune_thresholds
from pipeline.model import FramingModel
from pipeline.registry import decide_promotion
from pipeline.schema import load_label_schema
from pipeline.tracking import tracking_uri
from pipeline.train import run
from pipeline.training_data import load_data
from tests.fixtures_train import LABELS, SMALL_CANDIDATES, build_dataset, build_records, trained_workspace

SCHEMA = load_label_schema(LABELS)
PROBE = np.array(["They want to buy munitions and shells in exchange for grain.",
                  "An isolated pariah state forms a comprehensive strategic partnership."])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_workspace(tmp_path_factory.getbasetemp() / "train-shared")


# --------------------------------------------------------------------------- params


def test_params_defaults_and_expansion():
    p = build(TrainParams, {"candidates": {"logreg": {"grid": {"C": [1.0, 10.0]}},
                                           "complement_nb": {"grid": {"alpha": 0.5}}}}, "train")
    candidates = expand(p.candidates)
    assert [c.name for c in candidates] == ["most_frequent", "lexicon", "logreg[C=1.0]", "logreg[C=10.0]",
                                            "complement_nb[alpha=0.5]"]
    # Each candidate's hyperparameters are typed, the family's defaults filled in.
    assert candidates[2].hyperparameters.C == 1.0 and candidates[2].hyperparameters.class_weight == "balanced"
    assert candidates[2].grid_point == {"C": 1.0}
    assert build(TrainParams, {}, "train").frames_weight == 0.75


@pytest.mark.parametrize("raw, field", [
    ({"bogus": 1}, "bogus"),
    ({"candidates": {"forest": {}}}, "candidates.forest"),
    ({"candidates": {"logreg": {"grid": {"gamma": [1]}}}}, "logreg.grid"),
    ({"frames_weight": 1.5}, "frames_weight"),
    ({"features": {"word_ngram": [2, 1]}}, "features.word_ngram"),
    ({"threshold_grid": [0, 0.5]}, "threshold_grid"),
    ({"candidates": {"logreg": {"grid": {"C": ["ten"]}}}}, "logreg.grid.C"),
    ({"cv": "outlets"}, "cv"),
])
def test_params_errors_name_the_field(raw, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        build(TrainParams, raw, "configs/params.yaml: train")


# --------------------------------------------------------------------------- metrics and thresholds


def test_tune_thresholds_picks_best_f1_and_plateau_middle():
    Y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    P = np.array([[0.9, 0.1], [0.7, 0.2], [0.3, 0.3], [0.1, 0.9]])
    t = tune_thresholds(Y, P, [0.2, 0.4, 0.5, 0.6, 0.8])
    # Label 0: F1 = 1 for thresholds in (0.3, 0.7] → tied {0.4, 0.5, 0.6} → middle 0.5. Label 1: no positives → 0.5.
    assert t.tolist() == [0.5, 0.5]
    t = tune_thresholds(Y, P, [0.2, 0.8])
    assert t[0] == 0.2  # F1 0.8 at 0.2 beats F1 0.667 at 0.8


def test_frame_metrics_and_selection_score():
    Y = np.array([[1, 0], [0, 1], [1, 1]])
    D = np.array([[1, 0], [0, 0], [1, 1]])
    m = frame_metrics(Y, D, ["a", "b"])
    assert m["per_label"]["a"]["f1"] == 1.0 and m["per_label"]["b"]["recall"] == 0.5
    assert m["subset_accuracy"] == pytest.approx(2 / 3) and m["hamming_loss"] == pytest.approx(1 / 6)
    assert selection_score(0.8, 0.4, 0.75) == pytest.approx(0.7)


# --------------------------------------------------------------------------- promotion


def test_promotion_rule_cases():
    assert decide_promotion(0.5, None) == (True, "no current champion")
    ok, why = decide_promotion(0.7, 0.7, champion_version="3")
    assert ok and "v3" in why  # ties promote
    ok, why = decide_promotion(0.69, 0.7, champion_version="3")
    assert not ok and "kept" in why
    ok, why = decide_promotion(0.99, None, champion_version="3", champion_error="load failed")
    assert not ok and "could not be evaluated" in why


@given(st.floats(0, 1), st.floats(0, 1))
def test_a_worse_model_never_replaces_the_champion(candidate, champion):
    promote, _ = decide_promotion(candidate, champion, champion_version="1")
    assert promote == (round(candidate, 12) >= round(champion, 12))
    if candidate < champion - 1e-9:
        assert not promote


# --------------------------------------------------------------------------- tracking location


def test_tracking_uri_is_absolute_and_escapes_dvc_temp_workspace(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    temp_ws = tmp_path / "proj" / ".dvc" / "tmp" / "exps" / "tmpab12"
    assert project_root(temp_ws) == tmp_path / "proj"
    assert tracking_uri(temp_ws) == f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}"
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker:5000")
    assert tracking_uri(temp_ws) == "http://tracker:5000"


# --------------------------------------------------------------------------- CV on degenerate data


def test_cv_survives_label_without_positives_and_single_stance(tmp_path):
    records = build_records(36, seed=5)
    for r in records:  # strategic_partnership never occurs; every passage is "critical"
        r["frames"] = [f for f in r["frames"] if f != 2]
        r["stance"] = 0
    data = load_data(build_dataset(tmp_path / "ds", records=records))
    p = build(TrainParams, {"candidates": {"logreg": {}, "linear_svm": {}, "complement_nb": {}}}, "train")
    ctx = Context(SCHEMA, tuple(data.frame_names), tuple(data.stance_names), p.features, seed=0)
    tv = data.trainval
    for cand in expand(p.candidates):
        kind = cand.kind
        cv = cross_validate(cand, tv.texts, tv.Y, tv.y, tv.fold, ctx)
        rows, Pf, Ps = cv.rows, cv.frames_proba, cv.stance_proba
        assert Pf.shape == (len(rows), 3) and np.all(np.isfinite(Pf)), kind
        assert np.all(Pf[:, 2] == 0.0) or kind == "lexicon", kind
        # Learnt heads see one stance class and predict it; the lexicon still follows its cues.
        assert np.allclose(Ps[:, 0], 1.0) or kind == "lexicon", kind
        assert np.allclose(Ps.sum(axis=1), 1.0), kind
        t = tune_thresholds(data.trainval.Y[rows], Pf, p.threshold_grid)
        assert t[2] == 0.5


def test_dataset_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="dataset not found"):
        load_data(tmp_path / "nope")
    records = build_records(12, seed=1)
    ds = build_dataset(tmp_path / "one-fold", records=records, folds=1)
    with pytest.raises(InputError, match="fewer than 2 folds"):
        load_data(ds)


# --------------------------------------------------------------------------- end to end


def test_run_writes_outputs_and_tracks_runs(trained):
    summary = json.loads(trained["registry"].read_text())
    assert summary == json.loads(json.dumps(trained["summary"]))
    assert summary["registered"] and summary["promoted"] and summary["version"] == "1"
    assert summary["reason"] == "no current champion"
    cv = json.loads(trained["cv"].read_text())
    names = [c["name"] for c in cv["candidates"]]
    assert names == ["most_frequent", "lexicon", "logreg[C=10.0]"]
    assert cv["selection"]["best"] == summary["best_candidate"]
    best = max(cv["candidates"], key=lambda c: c["cv"]["score"])
    assert best["name"] == summary["best_candidate"]
    # The learnt/lexicon models beat the majority baseline on this data.
    assert best["cv"]["score"] > cv["candidates"][0]["cv"]["score"]
    model = FramingModel.load(trained["model"])
    assert model.name == summary["best_candidate"]
    assert model.thresholds.tolist() == list(best["thresholds"].values())
    oof = [json.loads(l) for l in trained["oof"].read_text().splitlines()]
    assert len(oof) == len(load_data(trained["dataset"]).trainval.ids) and all(r["fold"] >= 0 for r in oof)

    client = mlflow.MlflowClient(trained["uri"])
    parent = client.get_run(summary["parent_run_id"])
    assert parent.data.tags["git_commit"] and parent.data.tags["best_candidate"] == summary["best_candidate"]
    assert {d.dataset.name for d in parent.inputs.dataset_inputs} == {"framing-trainval", "framing-test"}
    children = client.search_runs([summary["experiment_id"]],
                                  f"tags.mlflow.parentRunId = '{summary['parent_run_id']}'")
    assert sorted(r.info.run_name for r in children) == sorted(names)
    for r in children:
        assert {"cv.score", "test.score", "train_seconds", "cv.frames_macro_f1"} <= set(r.data.metrics)
        assert r.data.params["kind"] in ("most_frequent", "lexicon", "logreg")
    mv = client.get_model_version_by_alias("framing-classifier", "champion")
    assert str(mv.version) == "1" and mv.run_id == summary["best_run_id"]


def test_logged_champion_predicts_through_pyfunc(trained):
    mlflow.set_tracking_uri(trained["uri"])
    loaded = mlflow.pyfunc.load_model("models:/framing-classifier@champion")
    df = loaded.predict(PROBE)
    model = FramingModel.load(trained["model"])
    expected = model.predict(list(PROBE))
    assert len(df) == 2
    for i, rec in enumerate(expected):
        assert df.loc[i, "stance"] == rec["stance"]
        assert json.loads(df.loc[i, "decided_frames"]) == rec["decided_frames"]
        assert json.loads(df.loc[i, "frames"]) == pytest.approx(rec["frames"])
        assert json.loads(df.loc[i, "evidence"]) == rec["evidence"]
    assert "transactional" in json.loads(df.loc[0, "decided_frames"])


def test_rerun_is_deterministic_and_worse_model_is_not_promoted(trained, tmp_path):
    """Second run: same data/params/seed → identical metrics and predictions; a tie promotes (v2).
    Third run trained on shuffled labels → worse on the same test split → alias stays on v2."""
    kw = dict(params=trained["params"], seed=trained["seed"], tracking=trained["uri"])
    s2 = run(trained["dataset"], LABELS, tmp_path / "m2.pkl", tmp_path / "cv2.json", tmp_path / "r2.json",
             tmp_path / "o2.jsonl", **kw)
    strip = lambda cv: [{k: v for k, v in c.items() if k not in ("run_id", "model_uri", "train_seconds")}  # noqa: E731
                        for c in cv["candidates"]]
    assert strip(json.loads((tmp_path / "cv2.json").read_text())) == strip(json.loads(trained["cv"].read_text()))
    assert (tmp_path / "o2.jsonl").read_text() == trained["oof"].read_text()
    assert FramingModel.load(tmp_path / "m2.pkl").predict(list(PROBE)) == FramingModel.load(trained["model"]).predict(list(PROBE))
    assert s2["promoted"] and s2["version"] == "2" and s2["previous_champion_version"] == "1"
    assert s2["champion_test_score"] == pytest.approx(s2["candidate_test_score"])

    # Same test split, training labels shuffled across passages: the new model is worse.
    records = build_records(60, seed=0)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(records))
    shuffled = [{**r, "frames": records[perm[i]]["frames"], "stance": records[perm[i]]["stance"]}
                for i, r in enumerate(records)]
    clean = build_dataset(tmp_path / "clean-check", records=records)
    bad = build_dataset(tmp_path / "bad", records=shuffled)
    data_clean, data_bad = load_data(clean), load_data(bad)
    assert data_clean.test.texts == data_bad.test.texts  # groups decide the split, not labels
    # Keep the test labels true: copy the clean test split into the shuffled dataset.
    import datasets
    dd = datasets.load_from_disk(str(bad))
    dd["test"] = datasets.load_from_disk(str(clean))["test"]
    dd.save_to_disk(str(tmp_path / "bad2"))
    p = build(TrainParams, {"candidates": SMALL_CANDIDATES, "log_models": "best"}, "train")
    s3 = run(tmp_path / "bad2", LABELS, tmp_path / "m3.pkl", tmp_path / "cv3.json", tmp_path / "r3.json",
             tmp_path / "o3.jsonl", p, trained["seed"], trained["uri"])
    assert s3["registered"] and s3["version"] == "3"
    assert s3["candidate_test_score"] < s3["champion_test_score"]
    assert not s3["promoted"] and s3["champion_version"] == "2" and "kept" in s3["reason"]
    client = mlflow.MlflowClient(trained["uri"])
    assert str(client.get_model_version_by_alias("framing-classifier", "champion").version) == "2"
    assert client.get_model_version("framing-classifier", "3").tags["promoted"] == "False"


def test_cv_scores_and_refit_do_not_depend_on_n_jobs(tmp_path):
    data = load_data(build_dataset(tmp_path / "ds", records=build_records(36, seed=3)))
    p = build(TrainParams, {"candidates": {"logreg": {}}}, "train")
    ctx = Context(SCHEMA, tuple(data.frame_names), tuple(data.stance_names), p.features, seed=0)
    tv = data.trainval
    (cand,) = [c for c in expand(p.candidates) if c.kind == "logreg"]
    one, two = (cross_validate(cand, tv.texts, tv.Y, tv.y, tv.fold, ctx, refit=True, n_jobs=n) for n in (1, 2))
    assert np.array_equal(one.rows, two.rows)
    assert np.array_equal(one.frames_proba, two.frames_proba) and np.array_equal(one.stance_proba, two.stance_proba)
    X = one.refit.featurizer.transform(tv.texts[:5])
    assert np.array_equal(one.refit.frames_head.predict_proba(X), two.refit.frames_head.predict_proba(X))
