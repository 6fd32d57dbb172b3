"""Data tests on the dataset built from the shipped documents (seeds and corpus) and annotations."""

import itertools
import json

import numpy as np

from pipeline.annotations import read_exports
from pipeline.dataset import SPLITS
from pipeline.dedup import MinHasher


def test_features_and_label_set_match_the_schema(dsd, schema):
    assert set(dsd) == set(SPLITS)
    for split in SPLITS:
        feats = dsd[split].features
        assert feats["frames"].feature.names == schema.frame_names
        assert feats["stance"].names == schema.stance_names
        assert {"id", "text", "doc_id", "group", "fold", "sources", "date", "n_annotators"} <= set(feats)


def test_every_label_is_represented_in_training(dsd, schema):
    train = dsd["train"]
    frames = {f for row in train["frames"] for f in row}
    assert frames == set(range(len(schema.frame_names)))
    assert len(set(train["stance"])) >= 2


def test_no_duplicate_text_anywhere(dsd):
    texts = [t for split in SPLITS for t in list(dsd[split]["text"])]
    assert len(texts) == len(set(texts))


def test_no_group_or_source_leaks_across_splits(dsd, params):
    seen = {}
    for split in SPLITS:
        for group in dsd[split]["group"]:
            assert seen.setdefault(group, split) == split


def test_no_near_duplicates_across_splits(dsd, params):
    hasher = MinHasher(params.ingest.dedup.num_perm, params.ingest.dedup.shingle_words, seed=params.seed)
    sigs = {s: np.array([hasher.signature(t) for t in dsd[s]["text"]]) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        for i, x in enumerate(sigs[a]):
            agree = (sigs[b] == x).mean(axis=1)  # estimated Jaccard with every passage of b
            j = int(agree.argmax())
            assert agree[j] < params.ingest.dedup.threshold, \
                f"{a} {dsd[a][i]['id']} and {b} {dsd[b][j]['id']} are near-duplicates ({agree[j]:.2f})"


def test_folds(dsd, params):
    assert set(dsd["test"]["fold"]) == {-1}
    cv = list(dsd["train"]["fold"]) + list(dsd["validation"]["fold"])
    assert set(cv) == set(range(params.dataset.cv_folds))


def test_every_annotated_passage_is_in_the_dataset(dsd, built, root, schema, params):
    records = read_exports(root / params.dataset.annotations_dir, schema, params.dataset.adjudicators)
    annotated = {r.passage_id for r in records if not r.cancelled}
    report = json.loads(built["report"].read_text())
    excluded = {item["passage_id"] for item in report["ties"]}
    in_dataset = {i for split in SPLITS for i in dsd[split]["id"]}
    assert in_dataset == annotated - excluded
    # off-topic passages stay, flagged, as negatives for every frame (and without a stance)
    off_topic = {r["id"]: r for split in SPLITS for r in dsd[split] if r["off_topic"]}
    assert set(off_topic) == {item["passage_id"] for item in report["off_topic"]} and off_topic
    assert all(r["frames"] == [] and r["stance"] == -1 for r in off_topic.values())


def test_every_shipped_passage_is_annotated(passages, root, schema, params):
    records = read_exports(root / params.dataset.annotations_dir, schema, params.dataset.adjudicators)
    assert {p["id"] for p in passages} <= {r.passage_id for r in records if not r.cancelled}


def test_stats_agree_with_the_dataset(dsd, built):
    stats = json.loads(built["stats"].read_text())
    for split in SPLITS:
        assert stats[split]["passages"] == len(dsd[split])
    assert stats["agreement"]["passages_with_2plus_annotators"] >= 10
