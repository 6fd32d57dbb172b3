"""Reliability tier: artifacts are byte-reproducible, and concurrent promotions cannot let a worse model win.

- `framing train` twice, in processes with different PYTHONHASHSEED values: every family's model
  file, the champion, the candidate, the CV report and out-of-fold predictions are the same bytes
  (before: a TF-IDF cache kept a memory address, so model.pkl differed on every run).
- `framing distill` on one CPU with a random hash seed gives the table whose digest dvc.lock
  records, which was distilled by another process on two, possibly on another machine (before:
  the table followed the machine's BLAS code path, and then, pinned to AVX2, still its CPU
  family; see pipeline/distill.py).
- Two `register` calls racing for the alias, the worse one finishing last: it does not win.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fixtures_train import build_dataset

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

FAMILIES = {"logreg": {"grid": {"C": [10.0]}}, "linear_svm": {"grid": {"C": [0.1]}},
            "complement_nb": {"grid": {"alpha": [0.1]}}, "embed_logreg": {"grid": {"C": [10.0]}},
            "embed_prior": {"grid": {"C": [10.0], "prior_weight": [0.3]}},
            "linear_mix": {"grid": {"C": [10.0], "char_ngrams": [True]}}}


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_train_gives_the_same_bytes_under_any_hash_seed(tmp_path, root, static_embedding):
    dataset = build_dataset(tmp_path / "dataset", n=90)
    params = yaml.safe_load((root / "configs/params.yaml").read_text())
    params["train"].update(cv="fold", candidates=FAMILIES, log_models="all")  # every family's model is logged
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    built = {}
    for seed in ("0", "4242"):
        out = tmp_path / f"hashseed-{seed}"
        out.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed, "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}"}
        paths = {"--model": "model.pkl", "--candidate": "candidate.pkl", "--cv-report": "cv.json",
                 "--registry": "registry.json", "--oof": "oof.jsonl"}
        cmd = [sys.executable, "-m", "pipeline.cli", "train", "--params", str(tmp_path / "params.yaml"),
               "--dataset", str(dataset), "--embeddings", str(static_embedding),
               *[a for flag, name in paths.items() for a in (flag, str(out / name))]]
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        files = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in paths.values()
                 if name != "registry.json"}  # run ids and times differ by design
        # each family's refit model, as logged to MLflow (named after the candidate)
        files.update({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in (out / "mlartifacts").rglob("*.pkl") if p.parent.name == "artifacts"
                      and p.name != "python_model.pkl"})
        built[seed] = files
    first, second = built.values()
    assert len(first) == 5 - 1 + len(FAMILIES) + 2  # 4 outputs, 6 families, 2 baselines
    assert first == second


def _dvc_dir_md5(path: Path) -> str:
    """The digest DVC records for an output folder (``md5: <hash>.dir`` in dvc.lock)."""
    import tempfile

    from dvc.fs import LocalFileSystem
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB

    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory() as odb:
        return build(HashFileDB(fs, odb), str(path), fs, "md5")[2].hash_info.value


def _locked_md5(root: Path, out: str) -> str:
    for stage in yaml.safe_load((root / "dvc.lock").read_text())["stages"].values():
        for entry in stage.get("outs", []):
            if entry["path"] == out:
                return entry["md5"]
    raise AssertionError(f"{out} not in dvc.lock")


def test_distill_gives_the_table_dvc_lock_records(tmp_path, root):
    """On one CPU, with another hash seed and another thread count than whoever filled dvc.lock."""
    out = tmp_path / "static_embedding"
    env = {**os.environ, "PYTHONHASHSEED": "977", "OMP_NUM_THREADS": "7"}  # the stage pins these itself
    cmd = [sys.executable, "-m", "pipeline.cli", "distill", "--params", str(root / "configs/params.yaml"),
           "--out", str(out), "--requirements", str(root / "configs/distill-requirements.lock")]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900,
                          preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\ndistill on one CPU: {time.monotonic() - start:.0f} s, {_dvc_dir_md5(out)}")
    assert _dvc_dir_md5(out) == _locked_md5(root, "models/static_embedding")


# --------------------------------------------------------------------------- 8. concurrent promotion


def _log_model(uri: str, name: str, score: float):
    import mlflow

    from pipeline.registry import Candidate

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_name=name) as run:
        # declared requirements: MLflow would otherwise infer them, which takes seconds
        info = mlflow.pyfunc.log_model(name="model", python_model=_constant_model(), pip_requirements=["mlflow"])
    return Candidate(name, run.info.run_id, info.model_uri, score, score)


def _compare_with(uri: str, score: float, seconds: float = 0.0, comparing=None):
    """A train's scoring of the alias holder: the holder's recorded test score against ``score``."""
    import mlflow

    from pipeline.registry import Comparison

    def compare(holder) -> Comparison:
        held = float(mlflow.MlflowClient(uri).get_model_version("m", holder.version).tags["test_score"])
        if comparing is not None:
            comparing.put(holder.version)  # it holds the lock and has read the champion
        time.sleep(seconds)  # re-scoring the champion on the test passages takes a while
        return Comparison(champion_score=held, candidate_score=score, passages=10, how="stored")

    return compare


def _promote(uri: str, name: str, score: float, seconds: float, comparing, result) -> None:
    """One `framing train`'s promotion, in its own process."""
    from pipeline.registry import register

    candidate = _log_model(uri, name, score)
    summary = register(uri, "m", "champion", candidate, _compare_with(uri, score, seconds, comparing))
    result.put((name, summary["version"], summary["promoted"], summary["reason"]))


def _constant_model():
    import mlflow.pyfunc

    class Constant(mlflow.pyfunc.PythonModel):  # promotion is about the alias, not about the model
        def predict(self, context, model_input, params=None):
            return [0] * len(model_input)

    return Constant()


def test_two_promotions_at_once_cannot_let_the_worse_model_win(tmp_path):
    """v1 (0.5) is the champion. A slow train (0.7) reads it and starts comparing; a quick train (0.9) starts
    meanwhile. Unlocked, both compared with v1, the quick one promoted, and the slow, worse one promoted last
    over it. Now the quick one waits, compares with the slow one's result and is the champion."""
    import mlflow

    from pipeline.registry import register

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register(uri, "m", "champion", _log_model(uri, "first", 0.5), _compare_with(uri, 0.5))
    ctx = multiprocessing.get_context("spawn")
    comparing, result = ctx.Queue(), ctx.Queue()
    worse = ctx.Process(target=_promote, args=(uri, "worse", 0.7, 3.0, comparing, result))
    better = ctx.Process(target=_promote, args=(uri, "better", 0.9, 0.0, None, result))
    worse.start()
    assert str(comparing.get(timeout=120)) == "1"  # the slow one read v1 and is comparing
    better.start()
    for p in (worse, better):
        p.join(180)
        assert p.exitcode == 0
    outcomes = {name: (version, promoted, reason) for name, version, promoted, reason in
                (result.get(timeout=5), result.get(timeout=5))}
    champion = mlflow.MlflowClient(uri).get_model_version_by_alias("m", "champion")
    print(f"\nconcurrent promotion: {json.dumps(outcomes)}; champion v{champion.version}")
    assert str(champion.version) == outcomes["better"][0] and outcomes["better"][1] is True
    # the quick one compared with the slow one's model, not with the v1 both started from
    assert f"champion v{outcomes['worse'][0]} 0.7000" in outcomes["better"][2]


def test_an_alias_moved_by_someone_else_meanwhile_is_not_overwritten(tmp_path):
    """Compare-and-set: another writer (say, a train on another machine, which the file lock does not see)
    moves the alias while this one compares; this one does not overwrite it."""
    import mlflow

    from pipeline.registry import register

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register(uri, "m", "champion", _log_model(uri, "first", 0.5), _compare_with(uri, 0.5))
    other = _log_model(uri, "other", 0.95)
    client = mlflow.MlflowClient(uri)
    other_version = client.create_model_version("m", other.model_uri, other.run_id).version
    client.set_model_version_tag("m", other_version, "test_score", "0.95")
    compare = _compare_with(uri, 0.7)

    def compare_while_someone_moves_the_alias(holder):
        client.set_registered_model_alias("m", "champion", other_version)
        return compare(holder)

    summary = register(uri, "m", "champion", _log_model(uri, "late", 0.7), compare_while_someone_moves_the_alias)
    assert summary["promoted"] is False and "alias moved to v" in summary["reason"]
    assert str(client.get_model_version_by_alias("m", "champion").version) == str(other_version)
