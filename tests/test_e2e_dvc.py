"""`dvc repro` end to end in a temporary copy of the repository (git + DVC, as a fresh clone)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests import workspace
from tests.workspace import sh

pytestmark = pytest.mark.slow

DETERMINED = ["data/passages.jsonl", "data/dataset_parquet/train.parquet", "data/dataset_parquet/test.parquet",
              "metrics/ingest.json", "metrics/dataset.json", "metrics/cv.json", "metrics/evaluate.json",
              "models/cv_predictions.jsonl"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory, root):
    """A fresh clone of the working tree (tests/workspace.py)."""
    return workspace.clone(root, tmp_path_factory.mktemp("clone") / "repo")


def predictions(repo: Path, env: dict) -> str:
    test_texts = repo / "test_texts.jsonl"
    rows = [{"text": t} for t in pd.read_parquet(repo / "data/dataset_parquet/test.parquet")["text"]]
    test_texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return sh([sys.executable, "-m", "pipeline.cli", "predict", "--model", "models/model.pkl", "--file", str(test_texts)], repo, env)


def test_repro_runs_the_pipeline_and_is_reproducible(clone):
    repo, env = clone
    dvc = [sys.executable, "-m", "dvc"]
    sh(dvc + ["repro"], repo, env)
    # The quickstart leaves a fresh clone as it was: every output reproduces what dvc.lock and the
    # committed metrics record (issue 14: the distilled table, and so every metric, used to differ).
    assert sh(["git", "status", "--porcelain"], repo, env) == "", sh(["git", "diff", "--stat"], repo, env)
    for out in ["data/dataset/dataset_dict.json", "models/static_embedding/model.safetensors", "models/model.pkl", "models/MODEL_CARD.md", "plots/png/per_label_f1.png",
                *DETERMINED]:
        assert (repo / out).exists(), out
    metrics = json.dumps(json.loads(sh(dvc + ["metrics", "show", "--json"], repo, env)))
    assert "passages_per_document" in metrics and "macro_f1" in metrics
    # The champion generalises to unseen documents better than keyword matching on the label cues.
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert cv["selection"]["cv"] == "outlet"
    scores = {c["name"]: c["cv"] for c in cv["candidates"]}
    best, lexicon = scores[cv["selection"]["best"]], scores["lexicon"]
    assert best["frames"]["macro_f1"] > lexicon["frames"]["macro_f1"]
    assert best["stance"]["macro_f1"] > lexicon["stance"]["macro_f1"]
    first = {p: (repo / p).read_bytes() for p in DETERMINED}
    first_predictions = predictions(repo, env)
    n_test = len(pd.read_parquet(repo / "data/dataset_parquet/test.parquet"))
    assert n_test > 100 and first_predictions.count("decided_frames") == n_test

    assert "changed" not in sh(dvc + ["status", "evaluate"], repo, env)  # `package` is always run, by design
    bento = json.loads((repo / "models/bento.json").read_text())
    assert bento["mlflow_version"] == "1" and bento["bento"].startswith("framing_classifier:")
    sh(dvc + ["repro", "--force"], repo, env)
    assert {p: (repo / p).read_bytes() for p in DETERMINED} == first  # same data + params + seed → same bytes
    assert predictions(repo, env) == first_predictions

    registry = json.loads((repo / "models/registry.json").read_text())
    assert registry["version"] == "2" and registry["promoted"]  # equal on the same test data → promoted
    listing = sh([sys.executable, "-m", "pipeline.cli", "models"], repo, env)
    assert "champion" in listing


def test_experiment_with_a_changed_param_is_tracked_in_dvc_and_mlflow(clone):
    repo, env = clone
    dvc = [sys.executable, "-m", "dvc"]
    sh(dvc + ["exp", "run", "-S", "configs/params.yaml:train.frames_weight=0.5", "--name", "fw05"], repo, env)
    assert "fw05" in sh(dvc + ["exp", "show", "--no-pager", "--csv"], repo, env)
    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("framing-pipeline").experiment_id],
                              "params.frames_weight = '0.5'")
    assert runs, "the experiment's parent run records train.frames_weight=0.5"


def test_repro_rejects_bad_input_and_the_cache_keeps_the_last_good_outputs(clone):
    repo, env = clone
    dvc = [sys.executable, "-m", "dvc"]
    before = (repo / "data/passages.jsonl").read_bytes()
    bad = repo / "seeds" / "zz_broken.txt"
    bad.write_bytes(b"\xff\xfe not utf-8 \x00")
    try:
        done = subprocess.run(dvc + ["repro", "ingest"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode != 0
        assert "zz_broken.txt:1: looks like a binary file" in done.stdout + done.stderr
    finally:
        bad.unlink()
    # DVC removes a stage's outputs before running it; the stage itself never
    # leaves a half-written file, and the last good version comes back from the cache.
    assert not (repo / "data/passages.jsonl").exists()
    assert not list((repo / "data").glob(".passages.jsonl.*"))
    sh(dvc + ["checkout", "ingest"], repo, env)
    sh(dvc + ["status"], repo, env)
    assert (repo / "data/passages.jsonl").read_bytes() == before
