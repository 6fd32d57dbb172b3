"""Synthetic DatasetDict with the dataset stage's exact schema, for train/evaluate/model tests.

Passages are built from the cue words of configs/labels.yaml, so the frame and
stance signal is learnable but noisy (fillers, cue mixing). Deterministic in ``seed``.
"""

from __future__ import annotations

import random
from pathlib import Path

import datasets

from pipeline.dataset import features  # the dataset stage's own column list
from pipeline.schema import load_label_schema
from pipeline.textnorm import normalize, passage_id

LABELS = Path(__file__).resolve().parents[1] / "configs" / "labels.yaml"
FILLERS = ["Officials in Moscow and Pyongyang met on Tuesday.", "The talks lasted several hours.",
           "Analysts watched the meeting closely.", "The leaders spoke to reporters afterwards.",
           "The visit was the first in years.", "State media carried the story."]


def build_records(n: int = 60, seed: int = 0, labels_path: Path = LABELS) -> list[dict]:
    schema = load_label_schema(labels_path)
    rng = random.Random(seed)
    frames, stances = schema.frames, schema.stance
    records = []
    for i in range(n):
        # Frames: cycle through none / single / pairs so every label has positives and negatives.
        pattern = [[], [0], [1], [2], [0, 1], [1, 2]][i % 6]
        s = i % len(stances)
        words = []
        for j in pattern:
            words += rng.sample(list(frames[j].cues), 2)
        words += rng.sample(list(stances[s].cues), 2)
        sentence = f"Kim and Putin {' and '.join(words)}."
        text = normalize(f"{rng.choice(FILLERS)} {sentence} {rng.choice(FILLERS)} #{i}")
        records.append({"id": passage_id(text), "text": text, "doc_id": f"doc{i // 3}", "group": f"g{i // 3}",
                        "frames": pattern, "stance": s})
    return records


def build_dataset(path: Path, n: int = 60, seed: int = 0, folds: int = 3, records: list[dict] | None = None,
                  labels_path: Path = LABELS) -> Path:
    """Save a DatasetDict at ``path``: groups of 3 passages; ~20% test, grouped folds on the rest."""
    schema = load_label_schema(labels_path)
    records = records if records is not None else build_records(n, seed, labels_path)
    groups = sorted({r["group"] for r in records}, key=lambda g: int(g[1:]))
    test_groups = set(groups[::5])
    val_groups = set(groups[1::7]) - test_groups
    trainval = [g for g in groups if g not in test_groups]
    fold_of = {g: k % folds for k, g in enumerate(trainval)}
    splits = {"train": [], "validation": [], "test": []}
    for r in records:
        g = r["group"]
        name = "test" if g in test_groups else "validation" if g in val_groups else "train"
        # every column of the dataset stage's schema; one outlet per group, so outlet folds hold
        row = {"sources": [r["doc_id"]], "date": "", "n_annotators": 1, "outlet": f"outlet-{g}",
               "outlet_type": "synthetic", "country": "", "year": 0, "event": "", "genre": "", "adjudicated": False,
               "off_topic": False,
               **r, "fold": -1 if name == "test" else fold_of[g]}
        splits[name].append(row)
    feats = features(schema.frame_names, schema.stance_names)
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=feats) for k, v in splits.items()})
    dd.save_to_disk(str(path))
    return path


# --------------------------------------------------------------------------- trained-once helper

SMALL_CANDIDATES = {"logreg": {"grid": {"C": [10.0]}}}
_CACHE: dict[str, dict] = {}


def trained_workspace(base: Path, seed: int = 7) -> dict:
    """Train once per session into ``base``/first (throwaway sqlite store); tests share the result.

    Returns paths plus the run() summary. Callers must treat the folder as read-only.
    """
    key = str(base)
    if key not in _CACHE:
        from pipeline.config import TrainParams
        from pipeline.typed import build
        from pipeline.train import run

        work = base / "first"
        work.mkdir(parents=True, exist_ok=True)
        ds = build_dataset(work / "dataset")
        uri = f"sqlite:///{work / 'mlflow.db'}"
        params = build(TrainParams, {"candidates": SMALL_CANDIDATES}, "train")
        paths = {k: work / v for k, v in {"model": "model.pkl", "cv": "cv.json", "registry": "registry.json",
                                           "oof": "oof.jsonl"}.items()}
        summary = run(ds, LABELS, paths["model"], paths["cv"], paths["registry"], paths["oof"], params, seed, uri)
        _CACHE[key] = {"work": work, "dataset": ds, "uri": uri, "params": params, "seed": seed, "summary": summary,
                       **paths}
    return _CACHE[key]


def training_arrays(records: list[dict], n_frames: int):
    """(texts, Y frames 0/1 matrix, y stance codes) of ``build_records`` output, as a candidate's ``fit`` takes them."""
    import numpy as np

    Y = np.zeros((len(records), n_frames), dtype=int)
    for i, r in enumerate(records):
        Y[i, r["frames"]] = 1
    return [r["text"] for r in records], Y, np.array([r["stance"] for r in records])
