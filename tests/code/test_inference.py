"""The scikit-learn-free forward pass (``pipeline.model.inference``): the same numbers as the
estimators, bit for bit, and a saved model that predicts without importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pytest

from pipeline.candidates import Context, candidate
from pipeline.config import FeatureParams
from pipeline.model import FramingModel
from pipeline.schema import load_label_schema
from pipeline.textnorm import model_text
from tests.fixtures_train import LABELS, build_records, training_arrays

SCHEMA = load_label_schema(LABELS)
FRAMES, STANCES = SCHEMA.frame_names, SCHEMA.stance_names
RECORDS = build_records(48, seed=3)
# Odd inputs next to the synthetic passages: empty, one letter, negators, Cyrillic, very long.
ODD = ["", "x", "not a strategic partnership, no alliance, isn't a deal", "Стратегическое партнёрство Москвы",
       "treaty " * 2000, "A deal. " * 3, "ÉTATS-UNIS — 'sanctions' (renewed)!"]


def _fit(kind: str, hp: dict, embeddings=None) -> FramingModel:
    texts, Y, y = training_arrays(RECORDS, len(FRAMES))
    ctx = Context(SCHEMA, tuple(FRAMES), tuple(STANCES), FeatureParams(), seed=0,
                  embeddings=str(embeddings) if embeddings else None)
    fitted = candidate(kind, **hp).fit(texts, Y, y, ctx)
    return FramingModel(name=kind, schema_version=1, frame_names=FRAMES, stance_names=STANCES,
                        featurizer=fitted.featurizer, frames_head=fitted.frames_head, stance_head=fitted.stance_head,
                        thresholds=(0.5, 0.5, 0.5), evidence_top_n=3)


def _assert_same_numbers(model: FramingModel, texts: list[str]) -> None:
    clean = [model_text(t) for t in texts]
    X_est, X_inf = model.featurizer.transform(clean), model.inference.featurizer.transform(clean)
    assert X_est.shape == X_inf.shape
    assert (X_est != X_inf).nnz == 0  # every feature bit-identical
    np.testing.assert_array_equal(model.frames_head.predict_proba(X_est), model.inference.frames_head.predict_proba(X_inf))
    np.testing.assert_array_equal(model.stance_head.predict_proba(X_est), model.inference.stance_head.predict_proba(X_inf))


@pytest.mark.parametrize("kind, hp", [("logreg", {"C": 10.0}),  # word and char_wb TF-IDF
                                      ("lexicon", {"alpha": 2.0}),
                                      ("linear_mix", {"C": 10.0}), ("linear_mix", {"C": 3.0, "char_ngrams": True})])
def test_forward_pass_is_bit_identical_to_the_estimators(kind, hp, static_dir):
    model = _fit(kind, hp, static_dir)  # word-level table with [UNK]: unknown tokens are dropped
    assert model.inference is not None
    _assert_same_numbers(model, [r["text"] for r in RECORDS] + ODD)


def test_the_served_champion_is_bit_identical_on_every_shipped_passage(champion, passages):
    """The pipeline's own champion (real distilled table, real tokenizer) on the seeds and the corpus."""
    assert champion.inference is not None and champion.describe()["inference"] == "numpy"
    _assert_same_numbers(champion, [p["text"] for p in passages] + ODD)


@pytest.mark.parametrize("kind, hp", [("complement_nb", {"alpha": 0.3}), ("linear_svm", {"C": 1.0}),
                                      ("embed_prior", {"C": 1.0})])
def test_unsupported_components_predict_through_the_estimators(kind, hp, tmp_path, static_dir):
    model = _fit(kind, hp, static_dir)
    assert model.inference is None and model.describe()["inference"] == "scikit-learn"
    loaded = FramingModel.load(model.save(tmp_path / "m.pkl"))
    assert loaded.predict(ODD + [RECORDS[0]["text"]]) == model.predict(ODD + [RECORDS[0]["text"]])


def test_a_loaded_model_unpickles_its_estimators_only_when_asked(static_dir, tmp_path):
    model = _fit("linear_mix", {"C": 10.0}, static_dir)
    loaded = FramingModel.load(model.save(tmp_path / "m.pkl"))
    assert "featurizer" not in vars(loaded)
    assert loaded.predict(ODD) == model.predict(ODD)
    assert "featurizer" not in vars(loaded)  # predicting did not need them
    clean = [model_text(t) for t in ODD]
    assert (loaded.featurizer.transform(clean) != model.featurizer.transform(clean)).nnz == 0
    # The estimators share the table and the vocabulary with the forward pass: stored once.
    state = model.__getstate__()
    table = model.inference.featurizer.cue_embedding.embedding.table
    assert table.nbytes > 0 and table.tobytes() not in state["_estimators"]
    assert loaded.featurizer.cue_embedding_.embedder_.model_.embedding is \
        loaded.inference.featurizer.cue_embedding.embedding.table


def test_a_format_2_model_file_is_upgraded_on_load(static_dir, tmp_path):
    """Files written before this layout (joblib, estimators in place) load and get a forward pass."""
    model = _fit("linear_mix", {"C": 10.0}, static_dir)
    state = {k: v for k, v in vars(model).items() if k != "inference"} | {"format": 2}

    class Old:  # pickles as a FramingModel with the format-2 state
        def __reduce__(self):
            return (object.__new__, (FramingModel,), state)

    joblib.dump(Old(), tmp_path / "old.pkl")
    loaded = FramingModel.load(tmp_path / "old.pkl")
    assert loaded.format == 3 and loaded.inference is not None
    assert loaded.predict(ODD) == model.predict(ODD)


def test_loading_and_predicting_imports_no_scikit_learn(static_dir, tmp_path):
    path = _fit("linear_mix", {"C": 10.0}, static_dir).save(tmp_path / "m.pkl")
    code = ("import sys; from pipeline.model import FramingModel;"
            f"print(FramingModel.load({str(path)!r}).predict(['A treaty.'])[0]['stance']);"
            "print(sorted(m for m in ('sklearn', 'pandas', 'joblib', 'model2vec', 'scipy.stats') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
