"""The forward pass without scikit-learn: what a saved model runs to predict.

A fitted model is trained with scikit-learn, but predicting with it needs only a few arrays,
regular expressions and a tokenizer. ``pipeline.model.compile`` copies those out of the fitted
estimators into the plain objects below, and ``FramingModel`` predicts through them, so loading a
model to predict imports NumPy, SciPy's sparse matrices and ``tokenizers`` — not scikit-learn,
SciPy's statistics or pandas (about 2 s of start-up on a 2-core machine, bench/RESULTS.md).

Every operation is the one the scikit-learn estimator performs, in the same order on the same
dtypes, so the probabilities are bit-identical to the estimators' (tested on the corpus).
``match_cues`` and ``Embedding`` are also what the training-time estimators in
``pipeline.model.features`` compute with: one implementation for both. Where a faster route gives
the same numbers, it is the one taken (cached token ids, integer n-gram keys, one word scan per
batch; tests/code/test_forward_kernels.py holds each to the obvious computation).

This module must not import scikit-learn (a test checks it).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from pipeline.model.matching import Words, match_cues
from pipeline.model.ngrams import WordNgramIndex
from pipeline.model.tokens import chunk_encoder

_NOT_WORD = re.compile(r"[^\w']+")
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's CountVectorizer._white_spaces


def words_only(text: str) -> str:
    """Lower-cased words separated by single spaces: what character n-grams are taken from, so that
    punctuation and spacing (which carry no framing) cannot change a prediction."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


# -- shared kernels (also called by the training-time estimators)

# scikit-learn's default token pattern: the WORD runs of two characters or more.
_DEFAULT_TOKENS = r"(?u)\b\w\w+\b"


def mean_embeddings(ids: np.ndarray, lengths: np.ndarray, table32: np.ndarray, normalize: bool) -> np.ndarray:
    """(n, dim) float64: the mean of each text's token vectors (unit length when ``normalize``);
    ``ids`` holds the texts' token ids one after another, ``lengths`` how many each has.

    One sparse segment-sum over a float32 copy of the table: each row is computed on its own,
    so a text gets the same vector alone or in a batch.
    """
    # Row i holds 1/len_i at its tokens' ids, repeats and order kept (CSR entries are not summed or
    # sorted unless asked): the product adds w·table[id] entry by entry, as a gather-then-sum
    # would, without copying the rows out first.
    segments = sp.csr_matrix((np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32),
                              ids, np.concatenate([[0], np.cumsum(lengths)])),
                             shape=(len(lengths), len(table32)))
    out = np.asarray(segments @ table32)
    if normalize:
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-32
    return out.astype(np.float64)


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, as scikit-learn's heads apply it (SciPy's ufunc)."""
    from scipy.special import expit as _expit  # imported on first prediction, not on load

    return _expit(x)


def softmax(d: np.ndarray) -> np.ndarray:
    """Row-wise softmax exactly as ``sklearn.utils.extmath.softmax`` computes it (in place on ``d``)."""
    d -= np.max(d, axis=1).reshape((-1, 1))
    np.exp(d, out=d)
    d /= np.sum(d, axis=1).reshape((-1, 1))
    return d


# -- featurisers

@dataclass
class Cues:
    """Fitted cue matcher: ``match_cues`` with the state of a fitted ``CueFeaturizer``."""

    patterns: list
    by_first_word: dict
    anywhere: list
    negation: Any

    def transform(self, texts: Sequence[str], words: Words | None = None) -> sp.csr_matrix:
        return match_cues(texts, self.patterns, self.by_first_word, self.anywhere, self.negation, words)


@dataclass
class Embedding:
    """Fitted static embedding: a ``tokenizers.Tokenizer``, its float16 table and model2vec's settings,
    plus the label prototypes' vectors (``StaticEmbedder``'s transform)."""

    tokenizer: Any
    table: np.ndarray
    unk_token_id: int | None
    max_length: int | None
    median_token_length: int
    normalize: bool
    prototype_vectors: np.ndarray
    _table32: np.ndarray | None = field(default=None, repr=False, compare=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.table.shape[1]))
        if self.max_length is not None:
            limit = self.max_length * self.median_token_length
            texts = [t[:limit] for t in texts]
        ids, lengths = self._encoder().encode(texts)
        if self.unk_token_id is not None:
            known = ids != self.unk_token_id
            lengths = np.bincount(np.repeat(np.arange(len(texts)), lengths)[known], minlength=len(texts))
            ids = ids[known]
        if self._table32 is None:
            self._table32 = np.asarray(self.table, dtype=np.float32)
        return mean_embeddings(ids, lengths, self._table32, self.normalize)

    def _encoder(self):
        """The tokenizer behind a chunk cache where that gives the same ids (built once per process)."""
        encoder = self.__dict__.get("_encoder_")
        if encoder is None:
            encoder = self._encoder_ = chunk_encoder(self.tokenizer)
        return encoder

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        E = self.embed(texts)
        if not len(self.prototype_vectors):
            return E
        return np.hstack([E, np.einsum("ij,kj->ik", E, self.prototype_vectors)])

    def __getstate__(self):
        state = {**self.__dict__, "_table32": None}
        state.pop("_encoder_", None)
        return state


@dataclass
class CueEmbedding:
    """``CueEmbeddingFeatures``: cue indicators, log(1 + cue count) per label, the embedding block."""

    cues: Cues
    embedding: Embedding
    label_matrix: np.ndarray

    def dense(self, texts: Sequence[str], words: Words | None = None) -> np.ndarray:
        K = self.cues.transform(texts, words)
        return np.hstack([K.toarray(), np.log1p(K @ self.label_matrix), self.embedding.transform(texts)])

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.csr_matrix(self.dense(texts))


@dataclass
class Tfidf:
    """A fitted ``TfidfVectorizer`` (word n-grams of ``token_pattern`` tokens of the lower-cased text,
    or ``char_wb`` n-grams of ``words_only`` text; counts, sublinear tf, idf weights, L2 rows). Only
    the settings ``compile`` checked are supported; each step is scikit-learn's, in its order."""

    vocabulary: dict
    idf: np.ndarray
    analyzer: str  # "word" | "char_wb"
    token_pattern: str
    ngram_range: tuple[int, int]
    sublinear_tf: bool

    def __post_init__(self):
        self._tokens = re.compile(self.token_pattern).findall

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_tokens", "_index")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    def _analyze(self, text: str) -> list[str]:
        if self.analyzer == "char_wb":
            return self._char_wb_ngrams(words_only(text))
        return self._word_ngrams(self._tokens(text.lower()))

    def _word_ngrams(self, tokens: list[str]) -> list[str]:
        # CountVectorizer._word_ngrams
        min_n, max_n = self.ngram_range
        if max_n == 1:
            return tokens
        original = tokens
        if min_n == 1:
            tokens, min_n = list(original), min_n + 1
        else:
            tokens = []
        for n in range(min_n, min(max_n + 1, len(original) + 1)):
            for i in range(len(original) - n + 1):
                tokens.append(" ".join(original[i:i + n]))
        return tokens

    def _char_wb_ngrams(self, text: str) -> list[str]:
        # CountVectorizer._char_wb_ngrams
        min_n, max_n = self.ngram_range
        ngrams = []
        for w in _WHITE_SPACES.sub(" ", text).split():
            w = " " + w + " "
            for n in range(min_n, max_n + 1):
                offset = 0
                ngrams.append(w[offset:offset + n])
                while offset + n < len(w):
                    offset += 1
                    ngrams.append(w[offset:offset + n])
                if offset == 0:  # a short word (len(w) < n) counts once
                    break
        return ngrams

    def transform(self, texts: Sequence[str], words: Words | None = None) -> sp.csr_matrix:
        indptr, indices, counts = self._counts(texts, words)
        X = sp.csr_matrix((counts.astype(np.float64), indices.astype(np.int32), indptr.astype(np.int32)),
                          shape=(len(texts), len(self.vocabulary)))
        if self.sublinear_tf:
            np.log(X.data, X.data)
            X.data += 1.0
        X.data *= self.idf[X.indices]
        _normalize_rows_l2(X)
        return X

    def _counts(self, texts: Sequence[str], words: Words | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CountVectorizer's counts as (indptr, indices, counts), column indices sorted per row."""
        if self.analyzer == "word":
            if "_index" not in self.__dict__:  # built once per process; None: too large for int64 keys
                self._index = WordNgramIndex.build(self.vocabulary, self.ngram_range)
            index = self._index
            if index is not None:  # token ids and integer n-gram keys, a batch at a time
                if words is not None and self.token_pattern == _DEFAULT_TOKENS:
                    return index.counts(words.words, min_length=2)
                return index.counts([self._tokens(t.lower()) for t in texts])
        # Per text: the vocabulary index of every known n-gram (looked up by map, in C), then the
        # sorted distinct indices with their counts.
        lookup, rows = self.vocabulary.get, []
        for text in texts:
            found = np.fromiter(map(lookup, self._analyze(text), itertools.repeat(-1)), dtype=np.int32)
            rows.append(np.unique(found[found >= 0], return_counts=True))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(j) for j, _ in rows])
        indices = np.concatenate([j for j, _ in rows]) if rows else np.zeros(0, dtype=np.int32)
        counts = np.concatenate([c for _, c in rows]) if rows else np.zeros(0)
        return indptr, indices, counts


def _normalize_rows_l2(X: sp.csr_matrix) -> None:
    """scikit-learn's ``inplace_csr_row_normalize_l2``: each row divided by the square root of its
    sum of squares, summed sequentially (a cumulative sum along rows padded with trailing zeros,
    which leave a sequential sum unchanged; NumPy's plain sums are pairwise)."""
    lengths = np.diff(X.indptr)
    if not len(lengths) or not lengths.max(initial=0):
        return
    if len(lengths) * int(lengths.max()) > 1 << 22:  # one very long text in a large batch: row by row
        for lo, hi in zip(X.indptr[:-1], X.indptr[1:]):
            if hi > lo:
                norm = np.sqrt(np.cumsum(X.data[lo:hi] * X.data[lo:hi])[-1])
                if norm != 0.0:
                    X.data[lo:hi] /= norm
        return
    squares = np.zeros((len(lengths), int(lengths.max())))
    squares[np.arange(lengths.max()) < lengths[:, None]] = X.data * X.data
    norms = np.sqrt(np.cumsum(squares, axis=1)[:, -1])
    norms[norms == 0.0] = 1.0  # scikit-learn leaves an all-zero row alone; x / 1.0 == x
    X.data /= np.repeat(norms, lengths)


@dataclass
class Union:
    """A ``FeatureUnion`` of word TF-IDF vectorisers: their blocks side by side."""

    tfidf: list

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        words = Words(texts) if any(t.analyzer == "word" for t in self.tfidf) else None
        return sp.hstack([t.transform(texts, words) for t in self.tfidf]).tocsr()


@dataclass
class Mixed:
    """``MixedFeatures``: TF-IDF blocks beside the scaled cue/embedding block, one CSR matrix."""

    tfidf: list
    cue_embedding: CueEmbedding
    scale: np.ndarray

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        words = Words(texts)
        blocks = [t.transform(texts, words) for t in self.tfidf]
        # The scaled dense block goes to CSR once (MixedFeatures converts, scales, then converts
        # again: the same values; an entry that scaling makes zero is only left out, not changed).
        block = sp.csr_matrix(self.cue_embedding.dense(texts, words) * self.scale)
        return sp.hstack([*blocks, block], format="csr")


# -- heads

@dataclass
class FramesHead:
    """``MultiLabelHead`` with logistic-regression label models: sigmoid(X · coef + intercept);
    labels seen with one value in training have a constant probability."""

    coef: np.ndarray
    intercept: np.ndarray
    constant: np.ndarray

    def predict_proba(self, X) -> np.ndarray:
        P = expit(np.asarray(X @ self.coef) + self.intercept)
        const = ~np.isnan(self.constant)
        P[:, const] = self.constant[const]
        return P


@dataclass
class StanceHead:
    """``StanceHead`` over a ``LogisticRegression`` (softmax over its classes, or sigmoid for two)
    or a constant distribution (one class in training)."""

    n_classes: int
    classes: np.ndarray | None = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    constant: np.ndarray | None = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_coef_t"}

    def predict_proba(self, X) -> np.ndarray:
        if self.coef is None:
            return np.tile(self.constant, (X.shape[0], 1))
        coef_t = self.__dict__.get("_coef_t")
        if coef_t is None:  # contiguous once, not copied by every product (same values)
            coef_t = self._coef_t = np.ascontiguousarray(self.coef.T)
        d = np.asarray(X @ coef_t) + self.intercept
        if d.shape[1] == 1:  # binary: LogisticRegression's _predict_proba_lr
            p = expit(d.reshape(-1))
            proba = np.vstack([1 - p, p]).T
        else:
            proba = softmax(d)
        P = np.zeros((X.shape[0], self.n_classes))
        P[:, self.classes] = proba
        return P


@dataclass
class LexiconFrames:
    """``heads.LexiconFrames``: k / (k + 1) for k matched cues of the label."""

    coef: np.ndarray

    def predict_proba(self, X) -> np.ndarray:
        k = np.asarray(X @ self.coef.T)
        return k / (k + 1.0)


@dataclass
class LexiconStance:
    """``heads.LexiconStance``: cue counts smoothed towards the training prior."""

    coef: np.ndarray
    prior: np.ndarray
    alpha: float

    def predict_proba(self, X) -> np.ndarray:
        k = np.asarray(X @ self.coef.T)
        return (k + self.alpha * self.prior) / (k.sum(axis=1, keepdims=True) + self.alpha)


@dataclass
class Inference:
    """What a ``FramingModel`` predicts with: a featuriser and the two heads, all free of scikit-learn."""

    featurizer: Any
    frames_head: FramesHead | LexiconFrames
    stance_head: StanceHead | LexiconStance

    def shared(self) -> list:
        """Large objects the fitted estimators hold too (pickled once, by reference from the estimators)."""
        out = []
        for f in getattr(self.featurizer, "tfidf", ()):
            out += [f.vocabulary, f.idf]
        ce = self.featurizer if isinstance(self.featurizer, CueEmbedding) else getattr(self.featurizer, "cue_embedding", None)
        if ce is not None:
            out += [ce.embedding.table, ce.embedding.tokenizer]
        out += [a for a in (self.frames_head.coef, self.stance_head.coef) if a is not None]
        return out
