"""Shared fixtures. Stage outputs are built into a temp folder once per session
from the repo's own seeds and annotations, so tests never depend on DVC state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_params
from pipeline.schema import load_label_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def params():
    return load_params(ROOT / "configs/params.yaml")


@pytest.fixture(scope="session")
def schema():
    return load_label_schema(ROOT / "configs/labels.yaml")


@pytest.fixture(scope="session")
def built(tmp_path_factory, params):
    """Run ingest and dataset on the shipped seeds and annotations; return their output paths."""
    from pipeline import dataset, ingest

    out = tmp_path_factory.mktemp("built")
    paths = {
        "passages": out / "passages.jsonl", "ingest_report": out / "ingest.json",
        "dataset": out / "dataset", "parquet": out / "parquet",
        "stats": out / "dataset_stats.json", "report": out / "dataset_report.json",
    }
    ingest.run([ROOT / d for d in params.ingest.input_dirs], paths["passages"], paths["ingest_report"], params.ingest, params.seed)
    dataset.run(paths["passages"], ROOT / params.dataset.annotations_dir, ROOT / "configs/labels.yaml",
                paths["dataset"], paths["parquet"], paths["stats"], paths["report"], params.dataset, params.seed)
    return paths


@pytest.fixture(scope="session")
def passages(built) -> list[dict]:
    return [json.loads(line) for line in built["passages"].read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def dsd(built):
    from datasets import load_from_disk

    return load_from_disk(str(built["dataset"]))


@pytest.fixture(scope="session")
def static_embedding(tmp_path_factory) -> Path:
    """The distill stage's output: the repo's own after `dvc repro`, else distilled now
    (the first time, this installs .venv-distill: about a minute)."""
    existing = ROOT / "models" / "static_embedding"
    if (existing / "model.safetensors").is_file():
        return existing
    from pipeline import distill

    out = tmp_path_factory.mktemp("distill") / "static_embedding"
    distill.main(["--params", str(ROOT / "configs/params.yaml"), "--out", str(out),
                  "--requirements", str(ROOT / "configs/distill-requirements.lock"), "--venv", str(ROOT / ".venv-distill")])
    return out


# The champion family on the shipped data (metrics/cv.json) at one grid point: the model tier tests
# what the pipeline serves without paying for the whole selection, which the end-to-end tier runs.
MODEL_TIER_CANDIDATES = {"linear_mix": {"grid": {"C": [10.0]}}}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, built, params, static_embedding):
    """A champion trained by the real train stage on the shipped dataset, with a throwaway MLflow store."""
    from dataclasses import replace

    from pipeline import train
    from pipeline.config import TrainParams
    from pipeline.model import FramingModel
    from pipeline.typed import build

    work = tmp_path_factory.mktemp("trained")
    tracking = f"sqlite:///{work / 'mlflow.db'}"
    train_params = replace(params.train, candidates=build(TrainParams, {"candidates": MODEL_TIER_CANDIDATES},
                                                          "model tier").candidates)
    summary = train.run(built["dataset"], ROOT / "configs/labels.yaml", work / "model.pkl", work / "cv.json",
                        work / "registry.json", work / "oof.jsonl", train_params,
                        params.seed, tracking=tracking, embeddings=static_embedding)
    return {"work": work, "tracking": tracking, "summary": summary, "model": FramingModel.load(work / "model.pkl")}


@pytest.fixture(scope="session")
def champion(trained):
    return trained["model"]
