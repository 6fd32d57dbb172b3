"""The deployable artifact: ``FramingModel``, raw text → frame probabilities, decided frames, stance, evidence.

One picklable object carries everything needed to predict from raw text: normalisation,
the fitted featuriser, the multi-label frame head, the multi-class stance head, per-label
frame thresholds, label names with their display names, schema version and model name.
``FramingModel.save`` / ``FramingModel.load`` are the only way a model file is written or
read (CLI, evaluate, promotion, Label Studio, the MLflow pyfunc, the BentoML service).

Predictions go through ``inference`` (``pipeline.model.inference``: the same arithmetic without
scikit-learn) whenever ``pipeline.model.compile`` supports every component. The saved file then
keeps the fitted estimators as a nested pickle that is unpickled only when something asks for
them (``model.featurizer``), so loading a model to predict never imports scikit-learn.

``MODEL_FORMAT`` is bumped on every change of the pickled layout. ``load`` upgrades the
formats listed in ``_UPGRADES`` and refuses any other with a "retrain" message.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from pipeline.errors import InputError
from pipeline.textnorm import model_text

# 1: the layout of pipeline/model.py before it was split (no display names).
# 2: classes in pipeline.model.{features,heads,artifact}; ``display_names``.
# 3: plain pickle; ``inference`` (may be None) and the estimators as a nested pickle (``_estimators``).
MODEL_FORMAT = 3
_ESTIMATORS = ("featurizer", "frames_head", "stance_head")


def default_display(key: str) -> str:
    """``isolated_pariah`` → ``Isolated pariah``: the schema's display names for every label so far."""
    return key.replace("_", " ").capitalize()


class FramingModel:
    """Everything needed to predict frames and stance from raw text (picklable).

    ``thresholds[j]`` decides frame ``frame_names[j]``: decided when probability >= threshold.
    """

    def __init__(self, *, name: str, schema_version: int, frame_names: Sequence[str], stance_names: Sequence[str],
                 featurizer, frames_head, stance_head, thresholds: Sequence[float], evidence_top_n: int = 5,
                 config: dict | None = None, display_names: dict[str, str] | None = None):
        self.format = MODEL_FORMAT
        self.name = name
        self.schema_version = int(schema_version)
        self.frame_names = list(frame_names)
        self.stance_names = list(stance_names)
        self.display_names = {key: (display_names or {}).get(key) or default_display(key)
                              for key in (*self.frame_names, *self.stance_names)}
        self.featurizer = featurizer
        self.frames_head = frames_head
        self.stance_head = stance_head
        self.thresholds = np.asarray(thresholds, dtype=float)
        if self.thresholds.shape != (len(self.frame_names),):
            raise ValueError(f"thresholds: expected {len(self.frame_names)} values, got {self.thresholds.shape}")
        self.evidence_top_n = int(evidence_top_n)
        self.config = dict(config or {})
        self._prepare_evidence()
        from pipeline.model.compile import compile_inference

        self.inference = compile_inference(featurizer, frames_head, stance_head)

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

    def features(self, texts: Sequence[str]):
        """The featuriser's matrix for raw ``texts`` (normalised here, exactly as at training)."""
        if isinstance(texts, str):
            raise InputError("texts: expected a list of strings, got a single string")
        clean = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"texts[{i}]: expected a string, got {type(t).__name__}")
            clean.append(model_text(t))
        return (self.inference or self).featurizer.transform(clean)

    def predict_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(frame probabilities (n, n_frames), stance probabilities (n, n_stances)), columns in name order."""
        return self._heads_proba(self.features(texts))

    def _heads_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        heads = self.inference or self
        return heads.frames_head.predict_proba(X), heads.stance_head.predict_proba(X)

    def decide(self, frame_proba: np.ndarray) -> np.ndarray:
        """Boolean (n, n_frames) decisions from probabilities and the stored thresholds."""
        return np.asarray(frame_proba) >= self.thresholds

    # -- record API

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per text: frames, decided_frames, stance, stance_scores, evidence."""
        X = self.features(texts)
        pf, ps = self._heads_proba(X)
        decided = self.decide(pf)
        X = sp.csr_matrix(X[:, self._evidence_columns])
        X.sort_indices()  # ties in evidence are then broken by feature index, deterministically
        frames, stances, names = self.frame_names, self.stance_names, self._feature_names
        # Every stored feature's contribution to every frame, negated: a stable ascending sort of
        # a row's column then ranks its features by contribution, ties by feature index.
        neg = -(X.data[:, None] * self._evidence_weights.T[X.indices])
        pf_rows, ps_rows, decided_rows = pf.tolist(), ps.tolist(), decided.tolist()
        stance_of = np.argmax(ps, axis=1).tolist()
        out = []
        for i in range(pf.shape[0]):
            labels = [j for j, d in enumerate(decided_rows[i]) if d]
            evidence = {}
            if labels:
                lo, hi = X.indptr[i], X.indptr[i + 1]
                block = neg[lo:hi]
                top = np.argsort(block, axis=0, kind="stable")[: self.evidence_top_n]
                positive = (np.take_along_axis(block, top, axis=0) < 0).T.tolist()
                words = names[X.indices[lo + top]].T.tolist()
                for j in labels:
                    evidence[frames[j]] = [w for w, p in zip(words[j], positive[j]) if p]
            out.append({
                "frames": dict(zip(frames, pf_rows[i])),
                "decided_frames": [frames[j] for j in labels],
                "stance": stances[stance_of[i]],
                "stance_scores": dict(zip(stances, ps_rows[i])),
                "evidence": evidence,
            })
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "schema_version": self.schema_version, "frame_names": self.frame_names,
                "stance_names": self.stance_names, "display_names": dict(self.display_names),
                "thresholds": dict(zip(self.frame_names, map(float, self.thresholds))), "config": self.config,
                "format": self.format, "inference": "numpy" if self.inference is not None else "scikit-learn"}

    # -- files

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` atomically (pickle); returns the path.

        The same model gives the same bytes in any process (``_drop_volatile``), so a rebuild
        leaves dvc.lock unchanged.
        """
        from pipeline.fsutil import atomic_open

        _drop_volatile(self)
        with atomic_open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=5)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "FramingModel":
        """The model saved at ``path``; InputError (naming the file) when absent, unreadable or too old."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: model not found (run the train stage)")
        try:
            with path.open("rb") as fh:
                model = pickle.load(fh)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        except Exception:  # noqa: BLE001 - formats 1-2 were written by joblib, whose arrays plain pickle cannot read
            model = _joblib_load(path)
        if not isinstance(model, cls):
            raise InputError(f"{path}: not a FramingModel (got {type(model).__name__})")
        return model

    # -- pickling: the estimators travel as a nested pickle, unpickled on first use

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in _ESTIMATORS}
        if "_estimators" not in state:  # a loaded model whose estimators were never unpickled keeps its bytes
            state["_estimators"] = _dump_estimators(tuple(getattr(self, k) for k in _ESTIMATORS), self.inference)
        return state

    def __getattr__(self, name: str):
        # Only reached when ``name`` is not set: the estimators of a loaded model, on first use.
        if name in _ESTIMATORS and "_estimators" in self.__dict__:
            blob = self.__dict__.pop("_estimators")
            self.__dict__.update(zip(_ESTIMATORS, _load_estimators(blob, self.__dict__.get("inference"))))
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setstate__(self, state: dict) -> None:
        fmt = state.get("format")
        while fmt != MODEL_FORMAT:
            upgrade = _UPGRADES.get(fmt)
            if upgrade is None:
                raise InputError(f"model format {fmt} is not supported (this pipeline reads formats "
                                 f"{sorted([*_UPGRADES, MODEL_FORMAT])}); retrain")
            state = upgrade(state)
            fmt = state["format"]
        self.__dict__.update(state)


def _dump_estimators(estimators: tuple, inference) -> bytes:
    """Pickle ``estimators``; objects ``inference`` also holds (the embedding table, the vocabulary)
    are written as references to it, so the file holds them once."""
    shared = {id(o): i for i, o in enumerate(inference.shared())} if inference is not None else {}

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return shared.get(id(obj))

    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(estimators)
    return buf.getvalue()


def _load_estimators(blob: bytes, inference) -> tuple:
    shared = inference.shared() if inference is not None else []

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            return shared[pid]

    return _Unpickler(io.BytesIO(blob)).load()


def _joblib_load(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc}); it was saved by an "
                         f"unsupported version of the pipeline: retrain it") from None


# Attributes that caches inside fitted estimators keep and that differ from one process to the
# next: scikit-learn's TfidfVectorizer remembers ``id(self.stop_words)`` (a memory address) to skip
# re-checking its stop words. Dropping it costs one cheap re-check at the next transform.
_VOLATILE_ATTRIBUTES = ("_stop_words_id",)


def _drop_volatile(root: Any) -> None:
    """Delete ``_VOLATILE_ATTRIBUTES`` from every object reachable from ``root`` (attributes, lists, dicts)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), np.ndarray)) or sp.issparse(obj):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for name in _VOLATILE_ATTRIBUTES:
                obj.__dict__.pop(name, None)
            stack.extend(obj.__dict__.values())


def _upgrade_from_1(state: dict) -> dict:
    """Format 1 → 2: display names did not exist; they are derived from the keys (as the schema had them)."""
    needed = {"_evidence_columns", "_feature_names", "_evidence_weights", "featurizer"}
    if not needed <= set(state):
        raise InputError("model format 1 from before evidence columns were cached is not supported; retrain")
    state = dict(state)
    state["display_names"] = {k: default_display(k) for k in (*state["frame_names"], *state["stance_names"])}
    state["format"] = 2
    return state


def _upgrade_from_2(state: dict) -> dict:
    """Format 2 → 3: the estimators were pickled in place (scikit-learn is loaded already); compile them."""
    from pipeline.model.compile import compile_inference

    state = dict(state)
    state["inference"] = compile_inference(*(state[k] for k in _ESTIMATORS))
    state["format"] = MODEL_FORMAT
    return state


_UPGRADES = {1: _upgrade_from_1, 2: _upgrade_from_2}
