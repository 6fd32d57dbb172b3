"""The deployable framing model: raw text → frame probabilities, decided frames, stance, evidence.

``FramingModel`` is one picklable object that carries everything needed to
predict from raw text: normalisation, the fitted featuriser, the multi-label
frame head, the multi-class stance head, per-label frame thresholds, label
names, schema version and model name. ``pipeline.mlflow_model.FramingPyfunc``
wraps it for ``mlflow.pyfunc``; this module never imports MLflow, so serving
stays light.

Heads are scikit-learn estimators over the featuriser's output with
``predict_proba`` and, for evidence, ``explain_coef_`` (labels × features): the
per-feature weight whose product with the feature value is that feature's
contribution towards the label (exact for linear models, a linear proxy for
calibrated/NB ones, a cue indicator for the lexicon).
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC

from pipeline.errors import InputError
from pipeline.textnorm import model_text

MODEL_FORMAT = 1  # bump when FramingModel's pickled layout changes


# --------------------------------------------------------------------------- features

_WORD = re.compile(r"\w+")


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
            phrases = sorted({" ".join(str(n).lower().split()) for n in self.negators}, key=len, reverse=True)
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
            first = _WORD.match(cue)
            (self.by_first_word_.setdefault(first.group(), []) if first else self.anywhere_).append(j)

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "patterns_" in state and "by_first_word_" not in state:  # pickled before the index existed
            self._index()
        self.__dict__.setdefault("negation_", None)

    def _counts(self, low: str, start: int) -> bool:
        """Whether a cue found at ``start`` counts: no negator close enough before it (same clause)."""
        return self.negation_ is None or self.negation_.search(low, max(0, start - 80), start) is None

    def transform(self, X: Iterable[str]):
        rows, cols = [], []
        n = 0
        for i, text in enumerate(X):
            low = text.lower()
            n = i + 1
            found = {j for j in self.anywhere_ for m in self.patterns_[j].finditer(low) if self._counts(low, m.start())}
            for word in _WORD.finditer(low):
                for j in self.by_first_word_.get(word.group(), ()):
                    if j not in found and self.patterns_[j].match(low, word.start()) and self._counts(low, word.start()):
                        found.add(j)
            rows += [i] * len(found)
            cols += sorted(found)
        data = np.ones(len(rows), dtype=np.float64)
        return sp.csr_matrix((data, (rows, cols)), shape=(n, len(self.vocabulary_)))

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.vocabulary_, dtype=object)


def _cue_matrix(vocabulary: Sequence[str], label_cues: Sequence[Sequence[str]]) -> np.ndarray:
    """labels × vocabulary indicator: 1 where the cue belongs to the label."""
    index = {c: j for j, c in enumerate(vocabulary)}
    m = np.zeros((len(label_cues), len(vocabulary)))
    for i, cues in enumerate(label_cues):
        for cue in cues:
            j = index.get(" ".join(str(cue).lower().split()))
            if j is not None:
                m[i, j] = 1.0
    return m


class LabelCueCounts(BaseEstimator, TransformerMixin):
    """log(1 + number of a label's cue phrases found), one column per label.

    Superseded by ``CueEmbeddingFeatures``; kept so that models registered before it (their
    FeatureUnion holds this class) still load, are compared fairly by the promotion rule, and serve.
    """

    def __init__(self, label_cues: Sequence[tuple[str, Sequence[str]]] = ()):
        self.label_cues = label_cues

    def fit(self, X=None, y=None):
        self.cues_ = CueFeaturizer(cues=tuple(c for _, cues in self.label_cues for c in cues)).fit()
        self.matrix_ = _cue_matrix(self.cues_.vocabulary_, [cues for _, cues in self.label_cues])
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        return np.log1p(np.asarray(self.cues_.transform(X) @ self.matrix_.T))

    def get_feature_names_out(self, input_features=None):
        return np.asarray([name for name, _ in self.label_cues], dtype=object)


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

        model2vec's ``encode`` (same truncation and tokens), with the per-text means done as one
        sparse segment-sum over a float32 copy of the table: model2vec averages float16 rows one
        length bucket at a time, which costs more than tokenising.
        """
        model = self.model_
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim_))
        if model.token_mapping is not None or model.weights is not None:  # vocabulary-quantised tables
            return model.encode(texts, use_multiprocessing=False).astype(np.float64)
        if model.max_length is not None:
            limit = model.max_length * model.median_token_length
            texts = [t[:limit] for t in texts]
        ids = model.tokenize(texts)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        n_tokens = int(lengths.sum())
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=n_tokens)
        segments = sp.csr_matrix((np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32),
                                  np.arange(n_tokens), np.concatenate([[0], np.cumsum(lengths)])),
                                 shape=(len(ids), n_tokens))
        out = np.asarray(segments @ self._table()[flat])
        if model.normalize:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-32
        return out.astype(np.float64)

    def _table(self) -> np.ndarray:
        # float32 copy of the (float16) table, built on first use and never pickled.
        table = self.__dict__.get("_table32")
        if table is None:
            table = self._table32 = np.asarray(self.model_.embedding, dtype=np.float32)
        return table

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_table32", None)
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
        self.label_matrix_ = _cue_matrix(self.cues_.vocabulary_, [cues for _, cues in self.label_cues]).T
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


# --------------------------------------------------------------------------- classifiers


class LexiconFrames(BaseEstimator, ClassifierMixin):
    """Keyword baseline for frames: score = k / (k + 1) for k matched cues of the label."""

    def __init__(self, vocabulary: Sequence[str] = (), label_cues: Sequence[Sequence[str]] = ()):
        self.vocabulary = vocabulary
        self.label_cues = label_cues

    def fit(self, X, Y=None):
        self.explain_coef_ = _cue_matrix(self.vocabulary, self.label_cues)
        return self

    def predict_proba(self, X) -> np.ndarray:
        k = np.asarray(X @ self.explain_coef_.T)
        return k / (k + 1.0)


class LexiconStance(BaseEstimator, ClassifierMixin):
    """Keyword baseline for stance: cue counts smoothed towards the training prior."""

    def __init__(self, vocabulary: Sequence[str] = (), label_cues: Sequence[Sequence[str]] = (), alpha: float = 1.0):
        self.vocabulary = vocabulary
        self.label_cues = label_cues
        self.alpha = alpha

    def fit(self, X, y):
        n_classes = len(self.label_cues)
        counts = np.bincount(np.asarray(y, dtype=int), minlength=n_classes).astype(float)
        self.prior_ = counts / counts.sum()
        self.explain_coef_ = _cue_matrix(self.vocabulary, self.label_cues)
        self.classes_ = np.arange(n_classes)
        return self

    def predict_proba(self, X) -> np.ndarray:
        k = np.asarray(X @ self.explain_coef_.T)
        return (k + self.alpha * self.prior_) / (k.sum(axis=1, keepdims=True) + self.alpha)


class CalibratedLinearSVC(BaseEstimator, ClassifierMixin):
    """LinearSVC with sigmoid-calibrated probabilities, safe on tiny classes.

    Calibration uses ``min(cv, smallest class count)`` stratified folds; with a
    class of one example no calibration split exists, so decision values are
    squashed (sigmoid / softmax) instead: uncalibrated but usable scores.
    """

    def __init__(self, C: float = 1.0, cv: int = 3, class_weight: str | None = "balanced", random_state: int = 0):
        self.C = C
        self.cv = cv
        self.class_weight = class_weight
        self.random_state = random_state

    def _svc(self) -> LinearSVC:
        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)

    def fit(self, X, y):
        _, counts = np.unique(y, return_counts=True)
        k = int(min(self.cv, counts.min()))
        if k >= 2:
            folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state)
            self.estimator_ = CalibratedClassifierCV(self._svc(), method="sigmoid", cv=folds).fit(X, y)
            self.coef_ = np.mean([c.estimator.coef_ for c in self.estimator_.calibrated_classifiers_], axis=0)
            self.calibrated_ = True
        else:
            self.estimator_ = self._svc().fit(X, y)
            self.coef_ = self.estimator_.coef_
            self.calibrated_ = False
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self.calibrated_:
            return self.estimator_.predict_proba(X)
        d = self.estimator_.decision_function(X)
        if d.ndim == 1:
            p = expit(d)
            return np.column_stack([1.0 - p, p])
        return softmax(d, axis=1)


def linear_weights(estimator, n_features: int) -> np.ndarray:
    """Per-feature weight towards the positive class of a fitted binary classifier (zeros if none)."""
    if isinstance(estimator, LogisticRegression) or isinstance(estimator, CalibratedLinearSVC):
        return np.asarray(estimator.coef_, dtype=float).reshape(-1)[:n_features]
    if isinstance(estimator, ComplementNB):
        # ComplementNB scores classes by X @ feature_log_prob_.T; the difference favours class 1.
        return estimator.feature_log_prob_[1] - estimator.feature_log_prob_[0]
    return np.zeros(n_features)


class MultiLabelHead(BaseEstimator, ClassifierMixin):
    """One binary clone of ``estimator`` per label; constant probability for a label seen with one value.

    When every fitted label model is a LogisticRegression their coefficients are
    stacked, so ``predict_proba`` is a single sparse matrix product.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, Y):
        Y = np.asarray(Y, dtype=int)
        n_labels, n_features = Y.shape[1], X.shape[1]
        self.estimators_: list = []
        self.constant_ = np.full(n_labels, np.nan)
        self.explain_coef_ = np.zeros((n_labels, n_features))
        for j in range(n_labels):
            y = Y[:, j]
            if y.min() == y.max():  # no positives (or no negatives) in this training set
                self.estimators_.append(None)
                self.constant_[j] = float(y[0])
                continue
            est = clone(self.estimator).fit(X, y)
            self.estimators_.append(est)
            self.explain_coef_[j] = linear_weights(est, n_features)
        fitted = [e for e in self.estimators_ if e is not None]
        self.stacked_ = bool(fitted) and all(isinstance(e, LogisticRegression) for e in fitted)
        if self.stacked_:
            self.coef_ = self.explain_coef_.T.copy()  # features × labels
            self.intercept_ = np.array([e.intercept_[0] if e is not None else 0.0 for e in self.estimators_])
        self.n_labels_ = n_labels
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self.stacked_:
            P = expit(np.asarray(X @ self.coef_) + self.intercept_)
        else:
            P = np.zeros((X.shape[0], self.n_labels_))
            for j, est in enumerate(self.estimators_):
                if est is not None:
                    P[:, j] = est.predict_proba(X)[:, list(est.classes_).index(1)]
        const = ~np.isnan(self.constant_)
        P[:, const] = self.constant_[const]
        return P


class StanceHead(BaseEstimator, ClassifierMixin):
    """Multi-class wrapper returning probabilities over all ``n_classes`` label codes.

    Classes absent from the training data get probability 0; with a single class
    present the prediction is that class with certainty.
    """

    def __init__(self, estimator=None, n_classes: int = 2):
        self.estimator = estimator
        self.n_classes = n_classes

    def fit(self, X, y):
        y = np.asarray(y, dtype=int)
        present = np.unique(y)
        self.classes_ = np.arange(self.n_classes)
        if len(present) == 1:
            self.estimator_ = None
            self.constant_ = np.eye(self.n_classes)[present[0]]
        else:
            self.estimator_ = clone(self.estimator).fit(X, y)
            self.constant_ = None
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self.estimator_ is None:
            return np.tile(self.constant_, (X.shape[0], 1))
        P = np.zeros((X.shape[0], self.n_classes))
        P[:, np.asarray(self.estimator_.classes_, dtype=int)] = self.estimator_.predict_proba(X)
        return P


class BlendedHead(BaseEstimator, ClassifierMixin):
    """``prior_weight`` · prior head + (1 − prior_weight) · learnt head, both over the same features.

    The prior (e.g. the cue lexicon) encodes what the label definitions say; the learnt head
    (over ``learned_columns`` only) adds what the annotated passages show. With a few dozen
    labels, the blend generalises to unseen sources better than either alone.
    """

    def __init__(self, learned=None, prior=None, prior_weight: float = 0.5, learned_columns: Sequence[int] | None = None):
        self.learned = learned
        self.prior = prior
        self.prior_weight = prior_weight
        self.learned_columns = learned_columns

    def _learned_X(self, X):
        return X if self.learned_columns is None else X[:, np.asarray(self.learned_columns)]

    def fit(self, X, y):
        self.learned_ = clone(self.learned).fit(self._learned_X(X), y)
        self.prior_ = clone(self.prior).fit(X, y)
        w = float(self.prior_weight)
        learned_coef = np.asarray(getattr(self.learned_, "explain_coef_", 0.0))
        coef = np.zeros((np.asarray(self.prior_.explain_coef_).shape[0], X.shape[1]))
        if np.ndim(learned_coef) == 2:
            coef[:, slice(None) if self.learned_columns is None else np.asarray(self.learned_columns)] = learned_coef
        self.explain_coef_ = w * np.asarray(self.prior_.explain_coef_) + (1.0 - w) * coef
        self.classes_ = getattr(self.prior_, "classes_", None)
        return self

    def predict_proba(self, X) -> np.ndarray:
        w = float(self.prior_weight)
        return w * self.prior_.predict_proba(X) + (1.0 - w) * self.learned_.predict_proba(self._learned_X(X))


# --------------------------------------------------------------------------- the model


class FramingModel:
    """Everything needed to predict frames and stance from raw text (picklable).

    ``thresholds[j]`` decides frame ``frame_names[j]``: decided when probability >= threshold.
    """

    def __init__(self, *, name: str, schema_version: int, frame_names: Sequence[str], stance_names: Sequence[str],
                 featurizer, frames_head, stance_head, thresholds: Sequence[float], evidence_top_n: int = 5,
                 config: dict | None = None):
        self.format = MODEL_FORMAT
        self.name = name
        self.schema_version = int(schema_version)
        self.frame_names = list(frame_names)
        self.stance_names = list(stance_names)
        self.featurizer = featurizer
        self.frames_head = frames_head
        self.stance_head = stance_head
        self.thresholds = np.asarray(thresholds, dtype=float)
        if self.thresholds.shape != (len(self.frame_names),):
            raise ValueError(f"thresholds: expected {len(self.frame_names)} values, got {self.thresholds.shape}")
        self.evidence_top_n = int(evidence_top_n)
        self.config = dict(config or {})
        self._prepare_evidence()

    def _prepare_evidence(self) -> None:
        """Cache feature names and evidence weights once, so predict() does no per-call setup."""
        names = np.asarray(self.featurizer.get_feature_names_out(), dtype=object)
        weights = np.asarray(getattr(self.frames_head, "explain_coef_", np.zeros((len(self.frame_names), len(names)))))
        # Word n-grams and cue phrases read as evidence; char n-grams ("ari", "sanc"), embedding
        # dimensions and per-label cue counts do not. Char n-grams only if nothing else exists.
        word = np.array([n.startswith("word__") for n in names])
        readable = word if word.any() else np.array([not n.startswith(("emb__", "label_cue__")) for n in names])
        weights = weights * readable
        # Only columns that can be evidence are looked at per passage (for an embedding model,
        # the few cue columns rather than hundreds of dense embedding dimensions).
        self._evidence_columns = np.flatnonzero((weights != 0).any(axis=0))
        self._feature_names = np.array([n.split("__", 1)[1] if "__" in n else n for n in names],
                                       dtype=object)[self._evidence_columns]
        self._evidence_weights = weights[:, self._evidence_columns]

    # -- vectorised API

    def _features(self, texts: Sequence[str]):
        if isinstance(texts, str):
            raise InputError("texts: expected a list of strings, got a single string")
        clean = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"texts[{i}]: expected a string, got {type(t).__name__}")
            clean.append(model_text(t))
        return self.featurizer.transform(clean)

    def predict_proba_frames(self, texts: Sequence[str]) -> np.ndarray:
        """(n_texts, n_frames) probabilities, columns in ``frame_names`` order."""
        return self.frames_head.predict_proba(self._features(texts))

    def predict_proba_stance(self, texts: Sequence[str]) -> np.ndarray:
        """(n_texts, n_stances) probabilities, columns in ``stance_names`` order."""
        return self.stance_head.predict_proba(self._features(texts))

    def decide(self, frame_proba: np.ndarray) -> np.ndarray:
        """Boolean (n, n_frames) decisions from probabilities and the stored thresholds."""
        return frame_proba >= self.thresholds

    # -- record API

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per text: frames, decided_frames, stance, stance_scores, evidence."""
        X = self._features(texts)
        pf = self.frames_head.predict_proba(X)
        ps = self.stance_head.predict_proba(X)
        decided = self.decide(pf)
        X = sp.csr_matrix(X[:, self._evidence_columns])
        X.sort_indices()  # ties in evidence are then broken by feature index, deterministically
        out = []
        for i in range(pf.shape[0]):
            lo, hi = X.indptr[i], X.indptr[i + 1]
            idx, val = X.indices[lo:hi], X.data[lo:hi]
            evidence = {}
            labels = np.flatnonzero(decided[i])
            for j in labels:
                contrib = val * self._evidence_weights[j, idx]
                order = np.argsort(-contrib, kind="stable")[: self.evidence_top_n]
                evidence[self.frame_names[j]] = [str(self._feature_names[idx[k]]) for k in order if contrib[k] > 0]
            out.append({
                "frames": {name: float(p) for name, p in zip(self.frame_names, pf[i])},
                "decided_frames": [self.frame_names[j] for j in labels],
                "stance": self.stance_names[int(np.argmax(ps[i]))],
                "stance_scores": {name: float(p) for name, p in zip(self.stance_names, ps[i])},
                "evidence": evidence,
            })
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "schema_version": self.schema_version, "frame_names": self.frame_names,
                "stance_names": self.stance_names,
                "thresholds": dict(zip(self.frame_names, map(float, self.thresholds))), "config": self.config}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if state.get("format") != MODEL_FORMAT:
            raise InputError(f"model format {state.get('format')} is not supported (expected {MODEL_FORMAT}); retrain")
        if "_evidence_columns" not in state:  # pickled before evidence columns were cached
            self._prepare_evidence()
