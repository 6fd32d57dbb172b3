"""Data tests on the hand-written behaviour challenge set (tests/model/challenge.jsonl).

Fast: no model, no network. Checks format, labels against the schema, coverage,
that paraphrase items carry no cue phrase, and that no item copies a seed or the corpus.
Labels are two independent annotators' judgements (adjudicated where they disagreed).
"""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.schema import load_label_schema
from pipeline.model import CueFeaturizer
from pipeline.textnorm import model_text

ROOT = Path(__file__).resolve().parents[2]
CHALLENGE = ROOT / "tests/model/challenge.jsonl"
KEYS = {"id", "category", "text", "frames", "stance", "off_topic", "labels", "note"}
CATEGORIES = ("paraphrase", "negation", "attribution", "off_topic")
SEED_RUN = 8  # words


@pytest.fixture(scope="module")
def schema():
    return load_label_schema(ROOT / "configs/labels.yaml")


@pytest.fixture(scope="module")
def items():
    rows = []
    for n, line in enumerate(CHALLENGE.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"{CHALLENGE.name}:{n}: not valid JSON: {exc}")
    return rows


def test_format(items):
    assert 95 <= len(items) <= 110, len(items)
    ids = [it.get("id") for it in items]
    assert not [i for i, c in Counter(ids).items() if c > 1], "duplicate ids"
    for it in items:
        assert set(it) == KEYS, f"{it.get('id')}: keys {sorted(it)}"
        assert it["category"] in CATEGORIES, f"{it['id']}: category {it['category']!r}"
        assert isinstance(it["frames"], list) and len(set(it["frames"])) == len(it["frames"]), it["id"]
        assert isinstance(it["note"], str) and it["note"].strip(), f"{it['id']}: empty note"
        words = len(it["text"].split())
        assert 12 <= words <= 80, f"{it['id']}: {words} words"
        assert re.search(r"[.!?]$", it["text"]), f"{it['id']}: text must end with . ! or ?"


def test_labels_belong_to_schema(items, schema):
    for it in items:
        assert set(it["frames"]) <= set(schema.frame_names), f"{it['id']}: frames {it['frames']}"
        if it["off_topic"]:
            assert it["frames"] == [] and it["stance"] is None, f"{it['id']}: off-topic items carry no labels"
        else:
            assert it["stance"] in schema.stance_names, f"{it['id']}: stance {it['stance']!r}"
        assert it["labels"].startswith(("two independent annotators", "adjudicated")), it["id"]


def test_coverage(items, schema):
    by_cat = {c: [it for it in items if it["category"] == c] for c in CATEGORIES}
    for cat, rows in by_cat.items():
        assert len(rows) >= 10, f"{cat}: only {len(rows)} items"
        if cat == "off_topic":
            continue
        stances = Counter(it["stance"] for it in rows)
        assert all(stances[s] >= 3 for s in schema.stance_names), f"{cat}: stances {dict(stances)}"
    para_frames = Counter(f for it in by_cat["paraphrase"] for f in it["frames"])
    for frame in schema.frame_names:
        assert para_frames[frame] >= 3, f"paraphrase: frame {frame} appears {para_frames[frame]} times"
    stances = Counter(it["stance"] for it in items)
    for stance in schema.stance_names:
        assert stances[stance] >= 3, f"stance {stance} appears {stances[stance]} times"


def test_paraphrases_contain_no_cue_phrase(items, schema):
    cues = [c for label in (*schema.frames, *schema.stance) for c in label.cues]
    featurizer = CueFeaturizer(cues=cues).fit()
    for it in items:
        if it["category"] != "paraphrase":
            continue
        row = featurizer.transform([model_text(it["text"])])
        found = [featurizer.vocabulary_[j] for j in row.indices]
        assert not found, f"{it['id']}: paraphrase contains cue phrase(s) {found}"


def _words(text):
    return " ".join(model_text(text).lower().split()).split(" ")


def test_no_near_duplicate_of_a_corpus_or_seed_passage(items, passages, params):
    """No challenge item may be a near-duplicate of a training passage (the ingest stage's MinHash)."""
    import numpy as np

    from pipeline.dedup import MinHasher

    hasher = MinHasher(params.ingest.dedup.num_perm, params.ingest.dedup.shingle_words, seed=params.seed)
    corpus = np.array([hasher.signature(p["text"]) for p in passages])
    for it in items:
        similar = (corpus == hasher.signature(it["text"])).mean(axis=1)
        assert similar.max() < params.ingest.dedup.threshold, f"{it['id']}: near-duplicate of a corpus passage"


def test_no_near_copy_of_a_seed(items):
    seeds = sorted((ROOT / "seeds").glob("*.txt"))
    assert seeds, "no seed files found"
    runs = set()
    for path in seeds:
        w = _words(path.read_text(encoding="utf-8"))
        runs.update(tuple(w[i:i + SEED_RUN]) for i in range(len(w) - SEED_RUN + 1))
    for it in items:
        w = _words(it["text"])
        shared = [" ".join(w[i:i + SEED_RUN]) for i in range(len(w) - SEED_RUN + 1) if tuple(w[i:i + SEED_RUN]) in runs]
        assert not shared, f"{it['id']}: shares a {SEED_RUN}-word run with a seed: {shared[0]!r}"
