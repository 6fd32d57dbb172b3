"""Featurisers: raw (model-normalised) text → feature matrices.

- ``CueFeaturizer``: which cue phrases of the label schema occur (negation-aware);
- ``StaticEmbedder``: a model2vec static sentence embedding plus similarities to label prototypes;
- ``CueEmbeddingFeatures``: both in one matrix, with per-label cue counts.

Every transform is row-independent: a passage gets the same features alone or in a batch.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone

from pipeline.errors import InputError
from pipeline.model.inference import Embedding, words_only
from pipeline.model.matching import WORD, match_cues

__all__ = ["CueFeaturizer", "StaticEmbedder", "CueEmbeddingFeatures", "MixedFeatures", "cue_matrix", "words_only"]


class CueFeaturizer(BaseEstimator, TransformerMixin):
    """Binary presence of each cue phrase (case-insensitive, whole words) → sparse matrix.

    With ``negators``, a cue counts only where no negator ends within ``negation_window``
    words before it in the same clause ("far from a strategic partnership", "no alliance");
    a word ending in "n't" always negates.
    """

    def __init__(self, cues: Sequence[str] = (), negators: Sequence[str] = (), negation_window: int = 3):
        self.cues = cues
        self.negators = negators
        self.negation_window = negation_window

    def fit(self, X=None, y=None):
        seen: dict[str, None] = {}
        for cue in self.cues:
            seen.setdefault(" ".join(str(cue).lower().split()), None)
        self.vocabulary_ = tuple(seen)
        # Word boundaries by look-around so cues with punctuation ("sanction-hit") still match.
        self.patterns_ = [re.compile(r"(?<!\w)" + re.escape(c) + r"(?!\w)") for c in self.vocabulary_]
        self.negation_ = None
        if self.negators:
            # Longest first, so "far from" wins over "far"; ties by text, so the pattern (and the
            # pickled model) is the same under every PYTHONHASHSEED.
            phrases = sorted({" ".join(str(n).lower().split()) for n in self.negators}, key=lambda p: (-len(p), p))
            alternatives = "|".join([re.escape(p).replace(r"\ ", " +") for p in phrases] + [r"[\w']*n't"])
            # A negator, then at most negation_window words up to the cue, within one clause and
            # before any "but" ("not only a deal but ...", "no alliance but a deal" deny no deal).
            gap = r"[^\w'.;:!?,()\"]"
            self.negation_ = re.compile(r"(?<![\w'])(?:%s)(?! +only\b| +just\b)(?:%s+(?!but\b|yet\b)[\w']+){0,%d}%s*$"
                                        % (alternatives, gap, self.negation_window, gap))
        self._index()
        return self

    def _index(self) -> None:
        # Index cues by their first word: a text is scanned once, and a cue's pattern is
        # tried only where its first word occurs (same matches as searching every pattern).
        self.by_first_word_: dict[str, list[int]] = {}
        self.anywhere_: list[int] = []
        for j, cue in enumerate(self.vocabulary_):
            first = WORD.match(cue)
            (self.by_first_word_.setdefault(first.group(), []) if first else self.anywhere_).append(j)

    def transform(self, X: Iterable[str]):
        return match_cues(list(X), self.patterns_, self.by_first_word_, self.anywhere_, self.negation_)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.vocabulary_, dtype=object)


def cue_matrix(vocabulary: Sequence[str], label_cues: Sequence[Sequence[str]]) -> np.ndarray:
    """labels × vocabulary indicator: 1 where the cue belongs to the label."""
    index = {c: j for j, c in enumerate(vocabulary)}
    m = np.zeros((len(label_cues), len(vocabulary)))
    for i, cues in enumerate(label_cues):
        for cue in cues:
            j = index.get(" ".join(str(cue).lower().split()))
            if j is not None:
                m[i, j] = 1.0
    return m


@functools.lru_cache(maxsize=4)
def _load_static_model(path: str, modified_ns: int):
    """model2vec table, loaded once per folder version (CV fits the same table many times)."""
    from model2vec import StaticModel

    return StaticModel.from_pretrained(path)


class StaticEmbedder(BaseEstimator, TransformerMixin):
    """Sentence embedding from a model2vec static table (mean of token vectors, unit length),
    plus the cosine similarity to each label prototype text (zero-shot priors).

    ``path`` is the distill stage's folder; ``fit`` reads it and the fitted object carries the
    table (no file is needed at predict time). ``prototypes`` are (name, text) pairs.
    """

    def __init__(self, path: str | None = None, prototypes: Sequence[tuple[str, str]] = ()):
        self.path = path
        self.prototypes = prototypes

    def fit(self, X=None, y=None):
        if self.path is None:
            raise InputError("StaticEmbedder: path to a model2vec folder (the distill stage's output) is required")
        table = Path(self.path) / "model.safetensors"
        try:
            self.model_ = _load_static_model(str(Path(self.path).resolve()), table.stat().st_mtime_ns if table.is_file() else 0)
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: not a model2vec static embedding folder ({exc}); run the distill stage") from None
        self.dim_ = int(self.model_.dim)
        self.prototype_vectors_ = self.embed([text for _, text in self.prototypes]) if self.prototypes else np.zeros((0, self.dim_))
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float64 unit vectors (zeros for a text with no known token).

        model2vec's ``encode`` (same truncation and tokens), computed by the forward pass that a
        saved model predicts with (``inference.Embedding``: per-text means over a float32 copy of
        the table; model2vec averages float16 rows one length bucket at a time, which costs more
        than tokenising).
        """
        model = self.model_
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim_))
        if model.token_mapping is not None or model.weights is not None:  # vocabulary-quantised tables
            return model.encode(texts, use_multiprocessing=False).astype(np.float64)
        return self.forward_pass().embed(texts)

    def forward_pass(self) -> Embedding:
        """The fitted table as the forward pass of a saved model computes with it (no prototypes)."""
        # Built on first use (it holds the float32 table) and never pickled.
        forward = self.__dict__.get("_forward_pass")
        if forward is None:
            model = self.model_
            forward = self._forward_pass = Embedding(
                tokenizer=model.tokenizer, table=model.embedding, unk_token_id=model.unk_token_id,
                max_length=model.max_length, median_token_length=model.median_token_length,
                normalize=bool(model.normalize), prototype_vectors=np.zeros((0, self.dim_)))
        return forward

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_forward_pass", None)
        return state

    def transform(self, X: Iterable[str]) -> np.ndarray:
        E = self.embed(X)
        if not len(self.prototype_vectors_):
            return E
        # einsum, not BLAS: a row's similarities must not depend on how many texts share the batch.
        return np.hstack([E, np.einsum("ij,kj->ik", E, self.prototype_vectors_)])

    def get_feature_names_out(self, input_features=None):
        names = [f"dim{i}" for i in range(self.dim_)] + [f"sim:{name}" for name, _ in self.prototypes]
        return np.asarray(names, dtype=object)


class CueEmbeddingFeatures(BaseEstimator, TransformerMixin):
    """One matrix: cue indicators, log(1 + cue count) per label, the sentence embedding and its
    prototype similarities, named ``cue__*``, ``label_cue__*``, ``emb__*``.

    Cue phrases are matched once and the per-label counts derived from that match (a
    FeatureUnion of separate transformers matched them twice and paid joblib dispatch and
    sparse stacking: about a third of a 64-passage prediction, bench/RESULTS.md).
    ``label_cues`` are (name, cue phrases) pairs.
    """

    def __init__(self, cues: CueFeaturizer | None = None, embedder: StaticEmbedder | None = None,
                 label_cues: Sequence[tuple[str, Sequence[str]]] = ()):
        self.cues = cues
        self.embedder = embedder
        self.label_cues = label_cues

    def fit(self, X=None, y=None):
        self.cues_ = clone(self.cues).fit()
        self.embedder_ = clone(self.embedder).fit()
        self.label_matrix_ = cue_matrix(self.cues_.vocabulary_, [cues for _, cues in self.label_cues]).T
        return self

    def transform(self, X: Iterable[str]):
        X = list(X)
        K = self.cues_.transform(X)
        # CSR, because scipy's sparse products compute each row on its own: dense BLAS products
        # round differently with the batch size, and a passage must score the same alone or in a batch.
        return sp.csr_matrix(np.hstack([K.toarray(), np.log1p(K @ self.label_matrix_), self.embedder_.transform(X)]))

    def get_feature_names_out(self, input_features=None):
        names = [f"cue__{c}" for c in self.cues_.get_feature_names_out()]
        names += [f"label_cue__{name}" for name, _ in self.label_cues]
        names += [f"emb__{n}" for n in self.embedder_.get_feature_names_out()]
        return np.asarray(names, dtype=object)


class MixedFeatures(BaseEstimator, TransformerMixin):
    """TF-IDF n-grams beside the cue and embedding block of ``CueEmbeddingFeatures``, in one sparse
    matrix, so one linear head learns how much each kind of evidence counts (no fixed blend).

    The cue columns (cue indicators, per-label cue counts) are scaled by ``cue_weight`` and the
    embedding columns (sentence embedding, prototype similarities) by ``embedding_weight``: with
    one L2 penalty over all columns, the scale sets how cheaply the head can lean on each block.
    """

    def __init__(self, tfidf=None, cue_embedding: CueEmbeddingFeatures | None = None, embedding_weight: float = 1.0,
                 cue_weight: float = 0.3):
        self.tfidf = tfidf
        self.cue_embedding = cue_embedding
        self.embedding_weight = embedding_weight
        self.cue_weight = cue_weight

    def fit(self, X, y=None):
        X = list(X)
        self.tfidf_ = clone(self.tfidf).fit(X)
        self.cue_embedding_ = clone(self.cue_embedding).fit()
        names = self.cue_embedding_.get_feature_names_out()
        self.scale_ = np.array([self.cue_weight if str(n).startswith(("cue__", "label_cue__")) else self.embedding_weight
                                for n in names])
        return self

    def transform(self, X: Iterable[str]):
        X = list(X)
        tfidf = sp.csr_matrix(self.tfidf_.transform(X))
        block = sp.csr_matrix(self.cue_embedding_.transform(X).multiply(self.scale_))
        return sp.hstack([tfidf, block], format="csr")

    def get_feature_names_out(self, input_features=None):
        return np.concatenate([np.asarray(self.tfidf_.get_feature_names_out(), dtype=object),
                               np.asarray(self.cue_embedding_.get_feature_names_out(), dtype=object)])
