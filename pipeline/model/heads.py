"""Classification heads over a featuriser's output, each with ``predict_proba`` and, for evidence,
``explain_coef_`` (labels × features): the per-feature weight whose product with the feature value
is that feature's contribution towards the label (exact for linear models, a linear proxy for
calibrated/NB ones, a cue indicator for the lexicon).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression

# sklearn.calibration, .model_selection, .naive_bayes and .svm are imported where a family needs
# them: loading and serving a logistic-regression model then never pays for them.

from pipeline.model.features import cue_matrix


class LexiconFrames(BaseEstimator, ClassifierMixin):
    """Keyword baseline for frames: score = k / (k + 1) for k matched cues of the label."""

    def __init__(self, vocabulary: Sequence[str] = (), label_cues: Sequence[Sequence[str]] = ()):
        self.vocabulary = vocabulary
        self.label_cues = label_cues

    def fit(self, X, Y=None):
        self.explain_coef_ = cue_matrix(self.vocabulary, self.label_cues)
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
        self.explain_coef_ = cue_matrix(self.vocabulary, self.label_cues)
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

    def _svc(self):
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)

    def fit(self, X, y):
        _, counts = np.unique(y, return_counts=True)
        k = int(min(self.cv, counts.min()))
        if k >= 2:
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.model_selection import StratifiedKFold

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
    if type(estimator).__name__ == "ComplementNB":  # by name: no import of sklearn.naive_bayes to ask
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


