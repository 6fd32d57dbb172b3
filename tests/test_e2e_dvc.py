"""`dvc repro` end to end in a temporary copy of the repository (git + DVC, as a fresh clone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STAGES = ["labels", "ingest", "dataset"]


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory, root):
    """A fresh clone of the working tree's tracked files (plus untracked, not ignored ones)."""
    dest = tmp_path_factory.mktemp("clone") / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}", "PYTHONPATH": str(dest)}
    sh(["git", "init", "-q"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "clone"], dest, env)
    return dest, env


def test_repro_builds_the_dataset_and_is_reproducible(clone):
    repo, env = clone
    dvc = [sys.executable, "-m", "dvc"]
    sh(dvc + ["repro", *STAGES], repo, env)
    for out in ["data/passages.jsonl", "data/dataset/dataset_dict.json", "data/dataset_parquet/test.parquet",
                "metrics/ingest.json", "metrics/dataset.json"]:
        assert (repo / out).exists(), out
    metrics = json.loads(sh(dvc + ["metrics", "show", "--json"], repo, env))
    flat = json.dumps(metrics)
    assert "passages_per_document" in flat and "cv_folds" in flat
    first = {p: (repo / p).read_bytes() for p in ["data/passages.jsonl", "metrics/dataset.json", "data/dataset_parquet/train.parquet"]}

    status = sh(dvc + ["status", *STAGES], repo, env)
    assert "changed" not in status, status
    sh(dvc + ["repro", "--force", *STAGES], repo, env)
    assert {p: (repo / p).read_bytes() for p in first} == first  # same inputs + seed → same bytes


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
    assert (repo / "data/passages.jsonl").read_bytes() == before
