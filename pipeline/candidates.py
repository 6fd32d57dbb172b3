"""Candidates: one grid point of one model family (``pipeline.families``), and how it builds its
featuriser and heads, fits them, and is cross-validated.

The baselines ``most_frequent`` and ``lexicon`` always run. scikit-learn is imported when a
candidate is built.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.config import CandidateGrid, FeatureParams
from pipeline.errors import InputError
from pipeline.families import (BASELINES, FAMILIES, Family, LinearHyperparameters, MixHyperparameters,
                               NaiveBayesHyperparameters, PriorBlendHyperparameters, SvmHyperparameters)
from pipeline.schema import LabelSchema

# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Context:
    """What every candidate is built against: the labels, the dataset's label order, the TF-IDF
    settings, the seed and the distill stage's embedding table."""

    schema: LabelSchema
    frame_names: tuple[str, ...]
    stance_names: tuple[str, ...]
    features: FeatureParams
    seed: int
    embeddings: str | None = None


@dataclass(frozen=True)
class Fitted:
    featurizer: Any
    frames_head: Any
    stance_head: Any


@dataclass(frozen=True)
class Candidate:
    """One grid point of one family. ``grid_point`` holds only what the grid set (it names the
    candidate and is reported); ``hyperparameters`` is the full typed value, defaults included."""

    name: str
    kind: str
    hyperparameters: Any
    grid_point: Mapping[str, Any]

    @property
    def family(self) -> Family:
        return FAMILIES[self.kind]

    def featurizer(self, ctx: Context):
        """The candidate's featuriser, unfitted."""
        return _FEATURIZERS[self.family.featurizer](self, ctx)

    def heads(self, ctx: Context, vocabulary: Sequence[str]):
        """(frames head, stance head), unfitted; ``vocabulary`` is the fitted featuriser's feature names."""
        return _HEADS[self.kind](self.hyperparameters, ctx, list(vocabulary))

    def fit(self, texts: Sequence[str], Y: np.ndarray, y: np.ndarray, ctx: Context) -> Fitted:
        """Fit featuriser and both heads on model-normalised ``texts`` with frame matrix ``Y`` and stance codes
        ``y``; rows with stance -1 (off-topic passages) train the frame head only."""
        feat = self.featurizer(ctx)
        X = feat.fit_transform(list(texts))
        frames_head, stance_head = self.heads(ctx, feat.get_feature_names_out())
        has_stance = np.flatnonzero(np.asarray(y) >= 0)
        with warnings.catch_warnings():
            # Tiny folds make liblinear/lbfgs warn about convergence; the result is still deterministic.
            warnings.simplefilter("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*converge.*")
            frames_head.fit(X, Y)
            stance_head.fit(X[has_stance], np.asarray(y)[has_stance])
        return Fitted(feat, frames_head, stance_head)


def candidate(kind: str, **point: Any) -> Candidate:
    """The candidate of family ``kind`` at grid point ``point`` (named ``kind[k=v,...]``)."""
    suffix = ",".join(f"{k}={v}" for k, v in point.items())
    return Candidate(f"{kind}[{suffix}]" if suffix else kind, kind, FAMILIES[kind].hyperparameters(**point), point)


def expand(grids: Sequence[CandidateGrid]) -> list[Candidate]:
    """Every candidate of the grids; baselines first, each name once."""
    kinds = {g.kind for g in grids}
    ordered = [CandidateGrid(k) for k in BASELINES if k not in kinds]
    ordered += sorted(grids, key=lambda g: not FAMILIES[g.kind].baseline)
    seen, out = set(), []
    for grid in ordered:
        keys = [k for k, _ in grid.grid]
        for combo in itertools.product(*[v for _, v in grid.grid]) if keys else [()]:
            cand = candidate(grid.kind, **dict(zip(keys, combo)))
            if cand.name not in seen:
                seen.add(cand.name)
                out.append(cand)
    return out


@dataclass(frozen=True)
class CrossValidation:
    rows: np.ndarray          # the rows with a fold (fold >= 0)
    frames_proba: np.ndarray  # their out-of-fold frame probabilities
    stance_proba: np.ndarray  # and stance probabilities
    refit: Fitted | None      # the candidate fitted on every row, when asked for


def _fit_and_predict(candidate: Candidate, texts: Sequence[str], Y: np.ndarray, y: np.ndarray,
                     train_idx: np.ndarray, test_idx: np.ndarray | None, ctx: Context):
    from threadpoolctl import threadpool_limits

    # One BLAS thread: L-BFGS's many small vector operations ran ~2.5x slower with OpenBLAS's
    # threads competing on 2 cores, the folds use the cores instead, and the scores do not
    # depend on how many threads a machine has.
    with threadpool_limits(1):
        fitted = candidate.fit([texts[i] for i in train_idx], Y[train_idx], y[train_idx], ctx)
        if test_idx is None:
            return fitted
        X = fitted.featurizer.transform([texts[i] for i in test_idx])
        return fitted.frames_head.predict_proba(X), fitted.stance_head.predict_proba(X)


def cross_validate(candidate: Candidate, texts: Sequence[str], Y: np.ndarray, y: np.ndarray, fold: np.ndarray,
                   ctx: Context, *, refit: bool = False, n_jobs: int = 1) -> CrossValidation:
    """Grouped CV over ``fold`` (and, with ``refit``, the fit on all rows), ``n_jobs`` fits at a
    time in worker processes. The scores do not depend on ``n_jobs``."""
    from joblib import Parallel, delayed

    rows = np.flatnonzero(fold >= 0)
    folds = sorted(set(fold[rows].tolist()))
    splits = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in folds]
    if refit:
        splits.append((np.arange(len(texts)), None))
    job = delayed(_fit_and_predict)
    outs = Parallel(n_jobs=min(n_jobs, len(splits)), backend="loky")(
        job(candidate, texts, Y, y, train_idx, test_idx, ctx) for train_idx, test_idx in splits)
    Pf = np.zeros((len(texts), len(ctx.frame_names)))
    Ps = np.zeros((len(texts), len(ctx.stance_names)))
    for (_, test_idx), out in zip(splits[:len(folds)], outs):
        Pf[test_idx], Ps[test_idx] = out
    return CrossValidation(rows, Pf[rows], Ps[rows], outs[-1] if refit else None)


# --------------------------------------------------------------------------- featurisers


def prototypes(schema: LabelSchema) -> tuple[tuple[str, str], ...]:
    """One zero-shot prototype text per label: its definition and cue phrases (not its examples,
    which are quoted from the seed documents and would leak them into document-held-out scores)."""
    return tuple((f"{task}:{label.key}", f"{label.definition} {', '.join(label.cues)}")
                 for task, labels in (("frame", schema.frames), ("stance", schema.stance)) for label in labels)


def _all_cues(schema: LabelSchema) -> tuple[str, ...]:
    return tuple(c for label in (*schema.frames, *schema.stance) for c in label.cues)


def _needs_table(candidate: Candidate, ctx: Context) -> str:
    if ctx.embeddings is None:
        raise InputError(f"train.candidates.{candidate.kind}: needs the static embedding table (--embeddings, "
                         "the distill stage's output)")
    return str(ctx.embeddings)


def _cue_featurizer(candidate: Candidate, ctx: Context):
    from pipeline.model.features import CueFeaturizer

    return CueFeaturizer(cues=_all_cues(ctx.schema))


def _tfidf_featurizer(candidate: Candidate, ctx: Context, char: bool = True):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    fp = ctx.features
    parts = [("word", TfidfVectorizer(analyzer="word", ngram_range=fp.word_ngram, min_df=fp.min_df,
                                      max_features=fp.max_features, sublinear_tf=fp.sublinear_tf))]
    if fp.char_ngram and char:
        from pipeline.model.features import words_only

        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=fp.char_ngram, min_df=fp.min_df,
                                              max_features=fp.max_features, sublinear_tf=fp.sublinear_tf,
                                              preprocessor=words_only)))
    return FeatureUnion(parts)


def _embedding_featurizer(candidate: Candidate, ctx: Context):
    from sklearn.pipeline import FeatureUnion

    from pipeline.model.features import StaticEmbedder

    return FeatureUnion([("emb", StaticEmbedder(path=_needs_table(candidate, ctx)))])


def _cue_embedding_featurizer(candidate: Candidate, ctx: Context):
    from pipeline.model.features import CueEmbeddingFeatures, CueFeaturizer, StaticEmbedder

    schema = ctx.schema
    label_cues = tuple((f"{task}:{label.key}", tuple(label.cues))
                       for task, labels in (("frame", schema.frames), ("stance", schema.stance)) for label in labels)
    return CueEmbeddingFeatures(CueFeaturizer(cues=_all_cues(schema), negators=schema.negators),
                                StaticEmbedder(path=_needs_table(candidate, ctx), prototypes=prototypes(schema)),
                                label_cues)


def _mixed_featurizer(candidate: Candidate, ctx: Context):
    from pipeline.model.features import MixedFeatures

    hp: MixHyperparameters = candidate.hyperparameters
    return MixedFeatures(_tfidf_featurizer(candidate, ctx, char=hp.char_ngrams), _cue_embedding_featurizer(candidate, ctx),
                         embedding_weight=float(hp.embedding_weight), cue_weight=float(hp.cue_weight))


_FEATURIZERS = {"cues": _cue_featurizer, "tfidf": _tfidf_featurizer, "embedding": _embedding_featurizer,
                "cue_embedding": _cue_embedding_featurizer, "mixed": _mixed_featurizer}


# --------------------------------------------------------------------------- heads


def _lexicon(hp, ctx: Context, vocabulary: list[str]):
    """The keyword baseline's heads; cues are matched to the dataset's labels by key."""
    from pipeline.model.heads import LexiconFrames, LexiconStance

    fcues = {label.key: label.cues for label in ctx.schema.frames}
    scues = {label.key: label.cues for label in ctx.schema.stance}
    # Cue features are named "cue__<phrase>" in the embedding featuriser and "<phrase>" alone.
    cue_vocabulary = tuple(v[len("cue__"):] if v.startswith("cue__") else v for v in vocabulary)
    return (LexiconFrames(cue_vocabulary, tuple(tuple(fcues.get(n, ())) for n in ctx.frame_names)),
            LexiconStance(cue_vocabulary, tuple(tuple(scues.get(n, ())) for n in ctx.stance_names),
                          getattr(hp, "alpha", 1.0)))


def _pair(base, ctx: Context):
    from sklearn.base import clone

    from pipeline.model.heads import MultiLabelHead, StanceHead

    return MultiLabelHead(clone(base)), StanceHead(clone(base), len(ctx.stance_names))


def _logistic(hp: LinearHyperparameters):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=float(hp.C), class_weight=hp.class_weight, max_iter=2000)


def _most_frequent_heads(hp, ctx, vocabulary):
    from sklearn.dummy import DummyClassifier

    return _pair(DummyClassifier(strategy="prior"), ctx)  # majority class; probabilities are the priors


def _linear_svm_heads(hp: SvmHyperparameters, ctx, vocabulary):
    from pipeline.model.heads import CalibratedLinearSVC

    return _pair(CalibratedLinearSVC(C=float(hp.C), cv=int(hp.cv), class_weight=hp.class_weight,
                                     random_state=ctx.seed), ctx)


def _complement_nb_heads(hp: NaiveBayesHyperparameters, ctx, vocabulary):
    from sklearn.naive_bayes import ComplementNB

    return _pair(ComplementNB(alpha=float(hp.alpha)), ctx)


def _embed_prior_heads(hp: PriorBlendHyperparameters, ctx: Context, vocabulary: list[str]):
    """Logistic regressions blended with the lexicon, which brings the cues. The learnt frame head sees
    only the embedding and prototype similarities: given cue counts too, it learns "no cue, no frame"
    from the seeds and shares the lexicon's blind spot for paraphrases. The stance head also gets the
    per-label cue counts (frames inform stance: a pariah frame reads critical)."""
    from sklearn.base import clone

    from pipeline.model.heads import BlendedHead, MultiLabelHead, StanceHead

    base = _logistic(hp)
    meaning = [j for j, v in enumerate(vocabulary) if v.startswith("emb__")]
    with_counts = [j for j, v in enumerate(vocabulary) if not v.startswith("cue__")]
    prior_frames, prior_stance = _lexicon(hp, ctx, vocabulary)
    w = float(hp.prior_weight)
    return (BlendedHead(MultiLabelHead(clone(base)), prior_frames, w, meaning),
            BlendedHead(StanceHead(clone(base), len(ctx.stance_names)), prior_stance, w, with_counts))


_HEADS = {
    "most_frequent": _most_frequent_heads,
    "lexicon": _lexicon,
    "logreg": lambda hp, ctx, vocabulary: _pair(_logistic(hp), ctx),
    "linear_svm": _linear_svm_heads,
    "complement_nb": _complement_nb_heads,
    "embed_logreg": lambda hp, ctx, vocabulary: _pair(_logistic(hp), ctx),
    "embed_prior": _embed_prior_heads,
    "linear_mix": lambda hp, ctx, vocabulary: _pair(_logistic(hp), ctx),
}

