"""Static-embedding featuriser, cue counts, blended heads and leave-one-document-out folds.

A tiny model2vec model (word-level tokenizer, random vectors) is built in the test, so
nothing here needs the distill stage or torch.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sklearn.linear_model import LogisticRegression
from model2vec import StaticModel

from pipeline.candidates import Context, candidate
from pipeline.config import DistillParams, FeatureParams
from pipeline.typed import build
from pipeline.errors import InputError
from pipeline.model import (BlendedHead, CueEmbeddingFeatures, CueFeaturizer, FramingModel, LexiconFrames,
                            MultiLabelHead, StaticEmbedder)
from pipeline.schema import load_label_schema
from pipeline.training_data import Split, document_folds
from tests.fixtures_train import LABELS, build_records, training_arrays

SCHEMA = load_label_schema(LABELS)
FRAMES, STANCES = SCHEMA.frame_names, SCHEMA.stance_names


TEXTS = ["Moscow wants to buy munitions and shells in exchange for grain and oil.",
         "The isolated pariah regime, an international outcast, is shunned.",
         "A comprehensive strategic partnership and a mutual defence treaty."]


def test_static_embedder_is_model2vec_encode_plus_prototype_similarities(static_dir):
    protos = (("frame:a", "isolated pariah outcast"), ("frame:b", "treaty alliance"))
    emb = StaticEmbedder(path=str(static_dir), prototypes=protos)
    assert emb.get_params() == {"path": str(static_dir), "prototypes": protos}  # __init__ only stores
    assert emb.fit(TEXTS) is emb
    X = emb.transform(TEXTS)
    reference = StaticModel.from_pretrained(str(static_dir)).encode(TEXTS).astype(np.float64)
    np.testing.assert_allclose(X[:, :16], reference, atol=1e-6)  # float32 sums here, float16 means in model2vec
    np.testing.assert_allclose(np.linalg.norm(X[:, :16], axis=1), 1.0, rtol=1e-3)
    prototypes = StaticModel.from_pretrained(str(static_dir)).encode([t for _, t in protos]).astype(np.float64)
    np.testing.assert_allclose(X[:, 16:], reference @ prototypes.T, atol=1e-6)
    assert emb.transform(["", "zzzz qqqq"]).tolist() == [[0.0] * 18] * 2  # no known token: zero vector
    assert list(emb.get_feature_names_out()[-2:]) == ["sim:frame:a", "sim:frame:b"]
    # The fitted object carries the table: no file is read after unpickling.
    clone = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(clone.transform(TEXTS), X)


def test_static_embedder_without_a_model_folder_says_what_to_run(tmp_path):
    with pytest.raises(InputError, match="distill"):
        StaticEmbedder(path=str(tmp_path / "missing")).fit()
    with pytest.raises(InputError, match="--embeddings"):
        candidate("embed_prior").featurizer(Context(SCHEMA, tuple(FRAMES), tuple(STANCES), FeatureParams(), 0))


def test_cue_embedding_features_match_cues_once_and_count_them_per_label(static_dir):
    feat = CueEmbeddingFeatures(CueFeaturizer(("pariah", "outcast", "treaty")), StaticEmbedder(path=str(static_dir)),
                                (("a", ("pariah", "outcast")), ("b", ("treaty",)))).fit()
    X = feat.transform(["A pariah, an outcast, a treaty.", "Nothing here."]).toarray()
    names = list(feat.get_feature_names_out())
    assert names[:5] == ["cue__pariah", "cue__outcast", "cue__treaty", "label_cue__a", "label_cue__b"]
    assert names[5:] == [f"emb__dim{i}" for i in range(16)] and X.shape == (2, 21)
    np.testing.assert_allclose(X[:, :5], [[1, 1, 1, np.log1p(2), np.log1p(1)], [0, 0, 0, 0, 0]])
    np.testing.assert_allclose(X[:, 5:], feat.embedder_.transform(["A pariah, an outcast, a treaty.", "Nothing here."]))


@pytest.mark.parametrize("text, found", [
    ("This is far from a strategic partnership.", []),
    ("The relationship is no alliance but a deal.", ["deal"]),  # "but" ends the negation
    ("Neither are there any weapons supplies.", []),
    ("It isn't an alliance.", []),
    ("Not only a deal but an alliance.", ["alliance", "deal"]),  # "not only" affirms
    ("Not isolated, but an alliance.", ["alliance"]),  # a comma ends the clause
    ("Not that anyone expected it, it was a deal.", ["deal"]),
    ("No one two three four deal.", ["deal"]),  # more than 3 words between
])
def test_cue_featurizer_drops_negated_cues_only_when_asked(text, found):
    cues = ("strategic partnership", "alliance", "weapons", "deal")
    negation_aware = CueFeaturizer(cues, negators=SCHEMA.negators).fit()
    X = negation_aware.transform([text.lower()])
    assert sorted(negation_aware.vocabulary_[j] for j in X.indices) == found
    plain = CueFeaturizer(cues).fit()  # the keyword baseline: every occurrence counts
    assert plain.transform([text.lower()]).nnz >= len(found)


def test_negators_come_from_the_labels_file_and_a_bare_no_is_named(tmp_path):
    assert {"no", "not", "far from"} <= set(SCHEMA.negators)
    bad = tmp_path / "labels.yaml"
    bad.write_text(Path(LABELS).read_text(encoding="utf-8") + "\nnegators: [not, no]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"negators\[1\].*quote it"):
        load_label_schema(bad)


def test_blended_head_is_the_weighted_mean_of_prior_and_learned_head():
    rng = np.random.default_rng(1)
    X = np.hstack([rng.integers(0, 2, size=(40, 2)).astype(float), rng.normal(size=(40, 3))])
    Y = np.column_stack([X[:, 0].astype(int), (X[:, 2] > 0).astype(int)])
    prior = LexiconFrames(vocabulary=("p", "q", "e0", "e1", "e2"), label_cues=(("p",), ("q",)))
    learned = MultiLabelHead(LogisticRegression())
    head = BlendedHead(learned, prior, prior_weight=0.7, learned_columns=[2, 3, 4]).fit(X, Y)
    expected = 0.7 * prior.fit(X).predict_proba(X) + 0.3 * MultiLabelHead(LogisticRegression()).fit(X[:, 2:], Y).predict_proba(X[:, 2:])
    np.testing.assert_allclose(head.predict_proba(X), expected)
    assert head.explain_coef_.shape == (2, 5)
    np.testing.assert_allclose(head.explain_coef_[:, :2], 0.7 * np.eye(2))  # cue columns: the prior's weight


def test_embed_prior_model_predicts_with_cue_evidence_only(static_dir):
    records = build_records(48, seed=3)
    texts, Y, y = training_arrays(records, len(FRAMES))
    ctx = Context(SCHEMA, tuple(FRAMES), tuple(STANCES), FeatureParams(), 0, str(static_dir))
    fitted = candidate("embed_prior", C=10.0, prior_weight=0.5).fit(texts, Y, y, ctx)
    model = FramingModel(name="embed_prior", schema_version=1, frame_names=FRAMES, stance_names=STANCES,
                         featurizer=fitted.featurizer, frames_head=fitted.frames_head,
                         stance_head=fitted.stance_head, thresholds=(0.5, 0.5, 0.5), evidence_top_n=3)
    out = model.predict(TEXTS)
    assert [r["decided_frames"] for r in out] == [["transactional"], ["isolated_pariah"], ["strategic_partnership"]]
    cues = {c.lower() for label in SCHEMA.frames for c in label.cues}
    for r in out:
        for evidence in r["evidence"].values():
            assert evidence and set(evidence) <= cues  # cue phrases, never embedding dimensions
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict(TEXTS) == out


def test_document_folds_keep_a_group_with_its_first_document():
    split = Split(ids=list("abcde"), texts=[""] * 5, groups=["g1", "g2", "g2", "g3", "g4"],
                  docs=["d2", "d1", "d2", "d2", "d3"], Y=np.zeros((5, 3)), y=np.zeros(5), fold=np.zeros(5))
    folds = document_folds(split)
    assert folds.tolist() == [1, 0, 0, 1, 2]  # g2 spans d1 and d2: it stays with d1 (its first row)


@pytest.mark.parametrize("raw, message", [({"pca_dims": 4}, "pca_dims"), ({"base_model": "bert"}, "base_model"),
                                          ({"dims": 3}, "unknown key")])
def test_distill_params_name_the_bad_field(raw, message):
    with pytest.raises(InputError, match=message):
        build(DistillParams, raw, "configs/params.yaml: distill")


@pytest.fixture(scope="module")
def every_family(static_dir) -> dict[str, FramingModel]:
    """One small fitted model per family (defaults of each), embedding families on the tiny table."""
    from pipeline.families import FAMILIES

    records = build_records(48, seed=3)
    texts, Y, y = training_arrays(records, len(FRAMES))
    ctx = Context(SCHEMA, tuple(FRAMES), tuple(STANCES), FeatureParams(), 0, str(static_dir))
    models = {}
    for kind in FAMILIES:
        fitted = candidate(kind).fit(texts, Y, y, ctx)
        models[kind] = FramingModel(name=kind, schema_version=1, frame_names=FRAMES, stance_names=STANCES,
                                    featurizer=fitted.featurizer, frames_head=fitted.frames_head,
                                    stance_head=fitted.stance_head, thresholds=(0.5, 0.5, 0.5), evidence_top_n=3)
    return models


# Any Python str: lone surrogates (which JSON's "\ud800" escape and surrogateescape-decoded bytes
# produce) included; hypothesis leaves category Cs out unless told.
# Surrogates are 2,048 of 1.1 million code points: drawn from half the time, so most examples have some
# (as a list of characters joined: st.text() drops surrogates from any alphabet).
ANY_CHAR = st.characters(exclude_categories=()) | st.characters(categories=["Cs"])
ANY_TEXTS = st.lists(st.lists(ANY_CHAR, max_size=60).map("".join), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=ANY_TEXTS)
def test_every_family_predicts_any_str(every_family, texts):
    """One bad text must not fail a batch: every model answers every str, as it would its valid-unicode repair."""
    from pipeline.textnorm import valid_unicode

    for kind, model in every_family.items():
        out = model.predict(texts)
        assert len(out) == len(texts), kind
        for record in out:
            assert all(0.0 <= p <= 1.0 for p in record["frames"].values()), kind
            assert abs(sum(record["stance_scores"].values()) - 1.0) < 1e-6, kind
        assert out == model.predict([valid_unicode(t) for t in texts]), kind
