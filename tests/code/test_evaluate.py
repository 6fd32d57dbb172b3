"""Evaluate stage: metrics agree with a recomputation, intervals are sane, plots/card/MLflow artifacts exist."""

from __future__ import annotations

import csv
import json

import mlflow
import numpy as np
import pytest
from sklearn.metrics import f1_score

from pipeline.config import EvaluateParams
from pipeline.typed import build
from pipeline.errors import InputError
from pipeline.evaluate import run
from pipeline.metrics import bootstrap_interval, frame_metrics, paired_gain, reliability, stance_metrics, wilson_interval
from pipeline.model import FramingModel
from pipeline.training_data import load_data
from tests.fixtures_train import trained_workspace


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tw = trained_workspace(tmp_path_factory.getbasetemp() / "train-shared")
    out = tmp_path_factory.mktemp("eval")
    paths = {"metrics": out / "metrics" / "evaluate.json", "plots": out / "plots", "card": out / "MODEL_CARD.md"}
    metrics = run(tw["dataset"], tw["model"], tw["oof"], tw["registry"], tw["cv"], paths["metrics"], paths["plots"],
                  paths["card"], EvaluateParams(bootstrap_reps=200), seed=1)
    return {**tw, **paths, "result": metrics}


def test_metrics_file_matches_recomputation(evaluated):
    m = json.loads(evaluated["metrics"].read_text())
    assert m == json.loads(json.dumps(evaluated["result"]))
    model = FramingModel.load(evaluated["model"])
    test = load_data(evaluated["dataset"]).test
    Pf, Ps = model.predict_proba(test.texts)
    D = model.decide(Pf).astype(int)
    t = m["test"]
    assert t["n"] == len(test.ids)
    assert t["frames"]["macro_f1"] == pytest.approx(f1_score(test.Y, D, average="macro", zero_division=0))
    assert t["frames"]["subset_accuracy"] == pytest.approx(np.mean((D == test.Y).all(axis=1)))
    assert t["frames"]["hamming_loss"] == pytest.approx(np.mean(D != test.Y))
    s_pred = np.argmax(Ps, axis=1)
    assert t["stance"]["accuracy"] == pytest.approx(np.mean(s_pred == test.y))
    assert np.array(t["stance"]["confusion_matrix"]["matrix"]).sum() == len(test.ids)
    assert set(t["frames"]["per_label"]) == set(model.frame_names)
    assert m["thresholds"] == dict(zip(model.frame_names, model.thresholds.tolist()))
    # CV section: recomputed from the OOF file the train stage wrote.
    oof = [json.loads(l) for l in evaluated["oof"].read_text().splitlines()]
    Y = np.array([r["frames_true"] for r in oof])
    Dp = np.array([r["frames_pred"] for r in oof])
    assert m["cv"]["n"] == len(oof)
    assert m["cv"]["frames"]["micro_f1"] == pytest.approx(f1_score(Y, Dp, average="micro", zero_division=0))
    for split in ("test", "cv"):
        for task, key in (("frames", "macro_f1"), ("frames", "micro_f1"), ("stance", "accuracy"),
                          ("stance", "macro_f1")):
            lo, hi = m[split][task][f"{key}_ci95"]
            assert 0 <= lo <= hi <= 1
        assert 0 <= m[split]["frames"]["brier"] <= 1 and 0 <= m[split]["stance"]["brier"] <= 2


def test_plot_files_for_dvc(evaluated):
    plots = evaluated["plots"]
    n_test = evaluated["result"]["test"]["n"]
    with (plots / "confusion" / "stance_test.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_test and set(rows[0]) == {"actual", "predicted"}
    model = FramingModel.load(evaluated["model"])
    for label in model.frame_names:
        assert (plots / "confusion" / f"frame_{label}_cv.csv").is_file()
        with (plots / "pr" / f"{label}_test.csv").open() as fh:
            pr = list(csv.DictReader(fh))
        assert pr and all(0 <= float(r["precision"]) <= 1 for r in pr)
    with (plots / "per_label_f1_test.csv").open() as fh:
        assert [r["label"] for r in csv.DictReader(fh)] == model.frame_names
    with (plots / "reliability_cv.csv").open() as fh:
        rel = list(csv.DictReader(fh))
    assert sum(int(r["count"]) for r in rel) == evaluated["result"]["cv"]["n"] * len(model.frame_names)
    pngs = sorted(p.name for p in (plots / "png").iterdir())
    assert pngs == ["evaluation_cv.png", "evaluation_test.png", "per_label_f1.png"]
    assert all((plots / "png" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_logged_to_the_train_parent_run(evaluated):
    summary = json.loads(evaluated["registry"].read_text())
    client = mlflow.MlflowClient(evaluated["uri"])
    run = client.get_run(summary["parent_run_id"])
    assert run.data.metrics["eval.test.frames_macro_f1"] == pytest.approx(
        evaluated["result"]["test"]["frames"]["macro_f1"])
    names = {a.path for a in client.list_artifacts(summary["parent_run_id"], "evaluation")}
    assert {"evaluation/evaluation_test.png", "evaluation/MODEL_CARD.md"} <= names


def test_model_card_content(evaluated):
    card = evaluated["card"].read_text()
    model = FramingModel.load(evaluated["model"])
    for label, t in zip(model.frame_names, model.thresholds):
        assert f"`{label}`: {t:.2f}" in card
    macro = evaluated["result"]["test"]["frames"]["macro_f1"]
    lo, hi = evaluated["result"]["test"]["frames"]["macro_f1_ci95"]
    assert f"| frames macro F1 | {macro:.3f} [{lo:.3f}, {hi:.3f}]" in card
    assert "## Intended use and limits" in card and "test passages" in card
    selection = json.loads(evaluated["cv"].read_text())["selection"]
    versus = selection["versus_lexicon"]
    lo, hi = versus["frames_ci95"]
    line = f"frames macro F1 {versus['frames_macro_f1_gain']:+.3f} (95% interval {lo:+.3f} to {hi:+.3f})"
    assert (line in card) == (selection["best"] != "lexicon")  # no comparison of the lexicon with itself


def test_interval_helpers():
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and 0.65 < lo < 0.75  # Wilson, unlike Wald, is not [1, 1] at 10/10
    assert wilson_interval(0, 0) == (0.0, 1.0)
    a = bootstrap_interval(lambda i: float(np.mean(i < 5)), 10, seed=3, reps=200)
    assert a == bootstrap_interval(lambda i: float(np.mean(i < 5)), 10, seed=3, reps=200)
    assert a[0] < 0.5 < a[1]
    rows = reliability(np.array([0, 1, 1, 0]), np.array([0.05, 0.95, 0.9, 0.15]), bins=10)
    assert [r["bin"] for r in rows] == [0, 1, 9] and rows[-1]["fraction_positive"] == 1.0


def test_paired_gain_compares_two_models_on_the_same_resampled_passages():
    rng = np.random.default_rng(0)
    Y = rng.integers(0, 2, size=(60, 3))
    y = rng.integers(0, 3, size=60)
    perfect = (Y.astype(bool), np.eye(3)[y])
    noisy = (Y.astype(bool) ^ (rng.random(Y.shape) < 0.4), np.eye(3)[np.where(rng.random(60) < 0.5, y, (y + 1) % 3)])
    same = paired_gain(Y, y, noisy, noisy, seed=1, reps=200)
    assert same["frames_macro_f1_gain"] == 0.0 and same["frames_ci95"] == [0.0, 0.0] and same["stance_ci95"] == [0.0, 0.0]
    better = paired_gain(Y, y, perfect, noisy, seed=1, reps=200)
    assert better["frames_ci95"][0] > 0 and better["stance_ci95"][0] > 0 and better["n"] == 60
    names = ["a", "b", "c"]
    assert better["frames_macro_f1_gain"] == pytest.approx(  # the same F1 as the reported metrics
        frame_metrics(Y, perfect[0], names)["macro_f1"] - frame_metrics(Y, noisy[0], names)["macro_f1"])
    assert better["stance_macro_f1_gain"] == pytest.approx(
        stance_metrics(y, perfect[1])["macro_f1"] - stance_metrics(y, noisy[1])["macro_f1"])
    worse = paired_gain(Y, y, noisy, perfect, seed=1, reps=200)
    assert worse["frames_macro_f1_gain"] == pytest.approx(-better["frames_macro_f1_gain"])
    assert better == paired_gain(Y, y, perfect, noisy, seed=1, reps=200)  # deterministic in seed


def test_errors(evaluated, tmp_path):
    with pytest.raises(InputError, match="bootstrap_reps"):
        build(EvaluateParams, {"bootstrap_reps": 1}, "evaluate")
    with pytest.raises(InputError, match="unknown key"):
        build(EvaluateParams, {"bins": 3}, "evaluate")
    with pytest.raises(InputError, match="run the train stage"):
        run(evaluated["dataset"], tmp_path / "missing.pkl", evaluated["oof"], evaluated["registry"], None,
            tmp_path / "m.json", tmp_path / "p", tmp_path / "c.md", EvaluateParams(), 0)
    bad = tmp_path / "oof.jsonl"
    bad.write_text('{"frames_true": [1, 0, 0]}\nnot json\n')
    with pytest.raises(InputError, match=r"oof.jsonl:2"):
        run(evaluated["dataset"], evaluated["model"], bad, evaluated["registry"], None, tmp_path / "m.json",
            tmp_path / "p", tmp_path / "c.md", EvaluateParams(log_to_mlflow=False), 0)
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "p").exists()
