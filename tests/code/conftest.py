"""Fixtures shared by the code tier."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from model2vec import StaticModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from pipeline.schema import load_label_schema
from tests.fixtures_train import LABELS, build_records

SCHEMA = load_label_schema(LABELS)


@pytest.fixture(scope="session")
def static_dir(tmp_path_factory) -> Path:
    """A model2vec folder over every word of the synthetic passages and the label definitions."""
    words = set()
    for text in [r["text"] for r in build_records(48, seed=3)] + [l.definition + " " + " ".join(l.cues)
                                                               for l in (*SCHEMA.frames, *SCHEMA.stance)]:
        words.update(w.lower() for w in re.findall(r"\w+", text))
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(sorted(words))}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.normalizer = normalizers.Lowercase()
    vectors = np.random.default_rng(0).normal(size=(len(vocab), 16)).astype(np.float32)
    out = tmp_path_factory.mktemp("static") / "static_embedding"
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(str(out))
    return out
