"""Fitted scikit-learn estimators → the plain forward pass of ``pipeline.model.inference``.

``compile_inference`` returns ``None`` for any component it does not know how to copy exactly
(naive Bayes, calibrated SVMs, blended heads, a plain embedding featuriser, quantised tables);
such a model predicts through its estimators, as before, and pays scikit-learn's import.
Called when a ``FramingModel`` is built, i.e. where scikit-learn is already loaded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.model import inference as inf

# A TfidfVectorizer is copied only with these settings (the ones pipeline.candidates builds):
# word n-grams of the lower-cased text, or char_wb n-grams of ``words_only`` text.
_TFIDF_FIXED = {"binary": False, "decode_error": "strict", "dtype": np.float64, "encoding": "utf-8",
                "input": "content", "lowercase": True, "norm": "l2", "stop_words": None, "strip_accents": None,
                "tokenizer": None, "use_idf": True}
_ANALYZERS = {"word": None, "char_wb": inf.words_only}  # analyzer → the preprocessor it must have


def compile_inference(featurizer, frames_head, stance_head) -> inf.Inference | None:
    """The scikit-learn-free forward pass of these fitted estimators, or None if one is not supported."""
    parts = (_featurizer(featurizer), _frames(frames_head), _stance(stance_head))
    return None if any(p is None for p in parts) else inf.Inference(*parts)


def _featurizer(f):
    from sklearn.pipeline import FeatureUnion

    from pipeline.model.features import CueEmbeddingFeatures, CueFeaturizer, MixedFeatures

    if type(f) is CueFeaturizer:
        return _cues(f)
    if isinstance(f, MixedFeatures):
        tfidf, ce = _union(f.tfidf_), _cue_embedding(f.cue_embedding_)
        return None if tfidf is None or ce is None else inf.Mixed(tfidf, ce, np.asarray(f.scale_))
    if isinstance(f, CueEmbeddingFeatures):
        return _cue_embedding(f)
    if isinstance(f, FeatureUnion):
        tfidf = _union(f)
        return None if tfidf is None else inf.Union(tfidf)
    return None


def _union(union) -> list[inf.Tfidf] | None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if getattr(union, "transformer_weights", None) is not None:
        return None
    out = []
    for _, t in union.transformer_list:
        if type(t) is not TfidfVectorizer:
            return None
        params = t.get_params()
        if any(params[k] != v for k, v in _TFIDF_FIXED.items()):
            return None
        if params["analyzer"] not in _ANALYZERS or params["preprocessor"] is not _ANALYZERS[params["analyzer"]]:
            return None
        out.append(inf.Tfidf(vocabulary=t.vocabulary_, idf=t.idf_, analyzer=params["analyzer"],
                             token_pattern=params["token_pattern"], ngram_range=tuple(params["ngram_range"]),
                             sublinear_tf=bool(params["sublinear_tf"])))
    return out or None


def _cues(cues) -> inf.Cues:
    return inf.Cues(list(cues.patterns_), dict(cues.by_first_word_), list(cues.anywhere_), cues.negation_)


def _cue_embedding(f) -> inf.CueEmbedding | None:
    emb = f.embedder_
    model = emb.model_
    if model.token_mapping is not None or model.weights is not None:
        return None
    return inf.CueEmbedding(
        cues=_cues(f.cues_),
        embedding=dataclasses.replace(emb.forward_pass(), prototype_vectors=np.asarray(emb.prototype_vectors_)),
        label_matrix=np.asarray(f.label_matrix_))


def _frames(head) -> inf.FramesHead | inf.LexiconFrames | None:
    from pipeline.model.heads import LexiconFrames, MultiLabelHead

    if type(head) is LexiconFrames:
        return inf.LexiconFrames(head.explain_coef_)
    if type(head) is not MultiLabelHead:
        return None
    if not head.stacked_:
        if any(e is not None for e in head.estimators_):
            return None
        # Every label constant: no coefficients were stacked.
        n_features = head.explain_coef_.shape[1]
        return inf.FramesHead(np.zeros((n_features, head.n_labels_)), np.zeros(head.n_labels_), head.constant_)
    return inf.FramesHead(head.coef_, head.intercept_, head.constant_)


def _stance(head) -> inf.StanceHead | inf.LexiconStance | None:
    from sklearn.linear_model import LogisticRegression

    from pipeline.model.heads import LexiconStance, StanceHead

    if type(head) is LexiconStance:
        return inf.LexiconStance(head.explain_coef_, head.prior_, float(head.alpha))
    if type(head) is not StanceHead:
        return None
    if head.estimator_ is None:
        return inf.StanceHead(n_classes=head.n_classes, constant=head.constant_)
    est = head.estimator_
    if type(est) is not LogisticRegression:
        return None
    return inf.StanceHead(n_classes=head.n_classes, classes=np.asarray(est.classes_, dtype=int), coef=est.coef_,
                          intercept=est.intercept_)
