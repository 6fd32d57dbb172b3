"""Stage `train`: grouped-CV model selection, threshold tuning, MLflow tracking and registry promotion.

For every candidate (family × grid point, plus the always-run baselines
``most_frequent`` and ``lexicon``) on the train+validation rows:

1. grouped CV over the dataset's ``fold`` column → out-of-fold (OOF) probabilities;
2. per-label frame thresholds tuned on the OOF probabilities (max F1);
3. ``score = w · frames macro F1 (OOF, tuned thresholds) + (1 − w) · stance macro F1 (OOF)``
   with ``w = train.frames_weight``; ties go to the higher stance macro F1, then
   to the earlier candidate (baselines come first, so a model must beat them);
4. refit on all train+validation rows, evaluate on test, log to MLflow (nested run).

The best candidate is saved to ``model_out``, registered as ``model_name`` and
given alias ``alias`` only if its test score is at least that of the current
alias holder evaluated now on the same test split (``decide_promotion``).
The OOF scores are slightly optimistic: thresholds are tuned on the same OOF
predictions they are scored on (the data is too small for nested CV).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion
from tqdm import tqdm

from pipeline.config import LabelSchema, load_label_schema, load_params
from pipeline.errors import InputError
from pipeline.fsutil import atomic_open, project_root, write_json
from pipeline.textnorm import model_text
from pipeline.metrics import frame_metrics, paired_gain, selection_score, stance_metrics, tune_thresholds
from pipeline.mlflow_model import FramingPyfunc, records_frame
from pipeline.model import (BlendedHead, CalibratedLinearSVC, CueEmbeddingFeatures, CueFeaturizer, FramingModel,
                            LexiconFrames, LexiconStance, MultiLabelHead, StaticEmbedder, StanceHead)

log = logging.getLogger(__name__)

KINDS = ("logreg", "linear_svm", "complement_nb", "embed_logreg", "embed_prior", "most_frequent", "lexicon")
EMBEDDING_KINDS = ("embed_logreg", "embed_prior")  # need the distill stage's static embedding table
BASELINES = ("most_frequent", "lexicon")
SPLITS = ("train", "validation", "test")
COLUMNS = ("id", "text", "doc_id", "group", "frames", "stance", "fold")


# --------------------------------------------------------------------------- params


def _check_keys(raw: Any, allowed: Sequence[str], where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - set(allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(raw)


def _ngram(value: Any, where: str) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v >= 1 for v in value)
            and value[0] <= value[1]):
        raise InputError(f"{where}: expected [min_n, max_n] with 1 <= min_n <= max_n, got {value!r}")
    return (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class FeatureParams:
    """TF-IDF featuriser: word n-grams plus (optionally) char_wb n-grams, joined by a FeatureUnion."""

    word_ngram: tuple[int, int] = (1, 2)
    char_ngram: tuple[int, int] | None = (3, 5)  # null: word n-grams only
    min_df: int = 1
    max_features: int | None = 20000
    sublinear_tf: bool = True

    @classmethod
    def from_mapping(cls, raw: Any, where: str) -> "FeatureParams":
        raw = _check_keys(raw, [f for f in cls.__dataclass_fields__], where)
        if "word_ngram" in raw:
            raw["word_ngram"] = _ngram(raw["word_ngram"], f"{where}.word_ngram")
        if raw.get("char_ngram") is not None:
            raw["char_ngram"] = _ngram(raw["char_ngram"], f"{where}.char_ngram")
        if not isinstance(raw.get("min_df", 1), int) or raw.get("min_df", 1) < 1:
            raise InputError(f"{where}.min_df: expected an integer >= 1, got {raw.get('min_df')!r}")
        return cls(**raw)


@dataclass(frozen=True)
class CandidateSpec:
    """A model family and a small grid; each grid point is one candidate."""

    kind: str
    grid: tuple[tuple[str, tuple], ...] = ()

    def points(self) -> list[tuple[str, dict]]:
        keys = [k for k, _ in self.grid]
        combos = itertools.product(*[v for _, v in self.grid]) if keys else [()]
        out = []
        for combo in combos:
            hp = dict(zip(keys, combo))
            suffix = ",".join(f"{k}={v}" for k, v in hp.items())
            out.append((f"{self.kind}[{suffix}]" if suffix else self.kind, hp))
        return out


_GRID_KEYS = {"logreg": ("C", "class_weight"), "linear_svm": ("C", "class_weight", "cv"),
              "complement_nb": ("alpha",), "embed_logreg": ("C", "class_weight"),
              "embed_prior": ("C", "class_weight", "prior_weight"), "most_frequent": (), "lexicon": ("alpha",)}


@dataclass(frozen=True)
class TrainParams:
    """params.yaml ``train:`` block (see /tmp/train_integration.md for the YAML)."""

    experiment: str = "framing-pipeline"
    model_name: str = "framing-classifier"
    alias: str = "champion"
    register: bool = True
    frames_weight: float = 0.75
    threshold_grid: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    evidence_top_n: int = 5
    log_models: str = "all"  # "all": every candidate's refit model is logged; "best": only the winner's
    cv: str = "document"  # "document": leave-one-document-out; "fold": the dataset stage's grouped folds
    features: FeatureParams = field(default_factory=FeatureParams)
    candidates: tuple[CandidateSpec, ...] = (
        CandidateSpec("logreg", (("C", (1.0, 10.0)),)),
        CandidateSpec("linear_svm", (("C", (0.1, 1.0)),)),
        CandidateSpec("complement_nb", (("alpha", (0.1, 0.5)),)),
    )

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "params.yaml: train") -> "TrainParams":
        raw = _check_keys(raw, [f for f in cls.__dataclass_fields__], where)
        if "features" in raw:
            raw["features"] = FeatureParams.from_mapping(raw["features"], f"{where}.features")
        if "candidates" in raw:
            raw["candidates"] = _candidates(raw["candidates"], f"{where}.candidates")
        if "threshold_grid" in raw:
            grid = raw["threshold_grid"]
            if not (isinstance(grid, (list, tuple)) and grid and all(isinstance(t, (int, float)) and 0 < t < 1 for t in grid)):
                raise InputError(f"{where}.threshold_grid: expected a non-empty list of numbers in (0, 1)")
            raw["threshold_grid"] = tuple(float(t) for t in grid)
        params = cls(**raw)
        if not 0.0 <= params.frames_weight <= 1.0:
            raise InputError(f"{where}.frames_weight: expected a number in [0, 1], got {params.frames_weight!r}")
        if params.cv not in ("document", "fold"):
            raise InputError(f"{where}.cv: expected 'document' or 'fold', got {params.cv!r}")
        if params.log_models not in ("all", "best"):
            raise InputError(f"{where}.log_models: expected 'all' or 'best', got {params.log_models!r}")
        if not isinstance(params.evidence_top_n, int) or params.evidence_top_n < 0:
            raise InputError(f"{where}.evidence_top_n: expected an integer >= 0")
        return params

    def expanded(self) -> list[tuple[str, str, dict]]:
        """(candidate name, kind, hyper-parameters); baselines first, each once."""
        specs = [CandidateSpec(k) for k in BASELINES if k not in {s.kind for s in self.candidates}]
        specs += sorted(self.candidates, key=lambda s: s.kind not in BASELINES)
        seen, out = set(), []
        for spec in specs:
            for name, hp in spec.points():
                if name not in seen:
                    seen.add(name)
                    out.append((name, spec.kind, hp))
        return out


def _candidates(raw: Any, where: str) -> tuple[CandidateSpec, ...]:
    """``{kind: {grid: {param: [values]}}}`` → CandidateSpecs (mapping order kept)."""
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{where}: expected a non-empty mapping of model kind → {{grid: ...}}")
    out = []
    for kind, spec in raw.items():
        if kind not in KINDS:
            raise InputError(f"{where}.{kind}: unknown model kind; expected one of {list(KINDS)}")
        spec = _check_keys(spec, ["grid"], f"{where}.{kind}")
        grid = _check_keys(spec.get("grid"), _GRID_KEYS[kind], f"{where}.{kind}.grid")
        items = []
        for key, values in grid.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise InputError(f"{where}.{kind}.grid.{key}: empty list of values")
            items.append((key, tuple(values)))
        out.append(CandidateSpec(kind, tuple(items)))
    return tuple(out)


# --------------------------------------------------------------------------- data


@dataclass
class Split:
    ids: list[str]
    texts: list[str]
    groups: list[str]
    docs: list[str]
    Y: np.ndarray  # (n, n_frames) 0/1
    y: np.ndarray  # (n,) stance codes
    fold: np.ndarray

    def take(self, idx: np.ndarray) -> "Split":
        return Split([self.ids[i] for i in idx], [self.texts[i] for i in idx], [self.groups[i] for i in idx],
                     [self.docs[i] for i in idx], self.Y[idx], self.y[idx], self.fold[idx])

    def frame(self):
        """pandas view for mlflow.data (labels as lists of codes / codes)."""
        import pandas as pd

        return pd.DataFrame({"id": self.ids, "text": self.texts, "group": self.groups,
                             "frames": [list(np.flatnonzero(r).astype(int).tolist()) for r in self.Y],
                             "stance": self.y.astype(int), "fold": self.fold.astype(int)})


@dataclass
class Data:
    frame_names: list[str]
    stance_names: list[str]
    trainval: Split
    test: Split


def _names(feature: Any, column: str, where: str) -> list[str]:
    inner = getattr(feature, "feature", feature)  # Sequence/List(ClassLabel) or ClassLabel
    names = getattr(inner, "names", None)
    if not names:
        raise InputError(f"{where}: column '{column}' must be a ClassLabel (or a sequence of ClassLabel), got {feature}")
    return list(names)


def load_data(path: str | Path) -> Data:
    """Read the dataset stage's DatasetDict; label names come from its features."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: dataset not found (run the dataset stage first)")
    try:
        dd = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a bad folder
        raise InputError(f"{path}: not a saved DatasetDict ({exc})") from None
    missing = [s for s in SPLITS if s not in dd]
    if missing:
        raise InputError(f"{path}: missing split(s) {missing}; expected {list(SPLITS)}")
    feats = dd["train"].features
    for split in SPLITS:
        absent = [c for c in COLUMNS if c not in dd[split].column_names]
        if absent:
            raise InputError(f"{path}: split '{split}' lacks column(s) {absent}")
    frame_names = _names(feats["frames"], "frames", str(path))
    stance_names = _names(feats["stance"], "stance", str(path))

    def split(name: str) -> Split:
        d = dd[name]
        n = len(d)
        Y = np.zeros((n, len(frame_names)), dtype=int)
        for i, codes in enumerate(d["frames"]):
            Y[i, list(codes)] = 1
        # Exactly what FramingModel.predict feeds its featuriser, so fitting and predicting cannot drift.
        return Split(list(d["id"]), [model_text(t) for t in d["text"]], list(d["group"]), list(d["doc_id"]), Y,
                     np.asarray(d["stance"], dtype=int), np.asarray(d["fold"], dtype=int))

    parts = [split("train"), split("validation")]
    tv = Split(parts[0].ids + parts[1].ids, parts[0].texts + parts[1].texts, parts[0].groups + parts[1].groups,
               parts[0].docs + parts[1].docs,
               np.vstack([parts[0].Y, parts[1].Y]), np.concatenate([parts[0].y, parts[1].y]),
               np.concatenate([parts[0].fold, parts[1].fold]))
    if len(set(tv.fold[tv.fold >= 0].tolist())) < 2:
        raise InputError(f"{path}: column 'fold' has fewer than 2 folds over train+validation; cannot cross-validate")
    return Data(frame_names, stance_names, tv, split("test"))


# --------------------------------------------------------------------------- candidates


def prototypes(schema: LabelSchema) -> tuple[tuple[str, str], ...]:
    """One zero-shot prototype text per label: its definition and cue phrases (not its examples,
    which are quoted from the seed documents and would leak them into document-held-out scores)."""
    return tuple((f"{task}:{label.key}", f"{label.definition} {', '.join(label.cues)}")
                 for task, labels in (("frame", schema.frames), ("stance", schema.stance)) for label in labels)


def make_featurizer(kind: str, fp: FeatureParams, schema: LabelSchema, embeddings: str | Path | None = None):
    """The candidate's featuriser, unfitted. Embedding kinds need ``embeddings`` (the distill stage's folder)."""
    cues = tuple(c for label in (*schema.frames, *schema.stance) for c in label.cues)
    if kind in BASELINES:
        return CueFeaturizer(cues=cues)
    if kind in EMBEDDING_KINDS:
        if embeddings is None:
            raise InputError(f"train.candidates.{kind}: needs the static embedding table (--embeddings, "
                             f"the distill stage's output)")
        if kind == "embed_logreg":
            return FeatureUnion([("emb", StaticEmbedder(path=str(embeddings)))])
        label_cues = tuple((f"{task}:{label.key}", tuple(label.cues))
                           for task, labels in (("frame", schema.frames), ("stance", schema.stance)) for label in labels)
        return CueEmbeddingFeatures(CueFeaturizer(cues=cues, negators=schema.negators),
                                    StaticEmbedder(path=str(embeddings), prototypes=prototypes(schema)), label_cues)
    parts = [("word", TfidfVectorizer(analyzer="word", ngram_range=fp.word_ngram, min_df=fp.min_df,
                                      max_features=fp.max_features, sublinear_tf=fp.sublinear_tf))]
    if fp.char_ngram:
        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=fp.char_ngram, min_df=fp.min_df,
                                              max_features=fp.max_features, sublinear_tf=fp.sublinear_tf)))
    return FeatureUnion(parts)


def make_heads(kind: str, hp: dict, frame_names: list[str], stance_names: list[str], schema: LabelSchema,
               vocabulary: Sequence[str], seed: int):
    """(frames head, stance head), unfitted. Cues are matched to dataset labels by key."""
    n_stance = len(stance_names)
    fcues = {l.key: l.cues for l in schema.frames}
    scues = {l.key: l.cues for l in schema.stance}
    # Cue features are named "cue__<phrase>" in the embedding featuriser and "<phrase>" alone.
    cue_vocabulary = tuple(v[len("cue__"):] if v.startswith("cue__") else v for v in vocabulary)

    def lexicon():
        return (LexiconFrames(cue_vocabulary, tuple(tuple(fcues.get(n, ())) for n in frame_names)),
                LexiconStance(cue_vocabulary, tuple(tuple(scues.get(n, ())) for n in stance_names), hp.get("alpha", 1.0)))

    if kind == "lexicon":
        return lexicon()
    if kind == "most_frequent":
        base = DummyClassifier(strategy="prior")  # predicts the majority class; probabilities are the priors
    elif kind in ("logreg", "embed_logreg", "embed_prior"):
        base = LogisticRegression(C=float(hp.get("C", 1.0)), class_weight=hp.get("class_weight", "balanced"), max_iter=2000)
    elif kind == "linear_svm":
        base = CalibratedLinearSVC(C=float(hp.get("C", 1.0)), cv=int(hp.get("cv", 3)),
                                   class_weight=hp.get("class_weight", "balanced"), random_state=seed)
    elif kind == "complement_nb":
        base = ComplementNB(alpha=float(hp.get("alpha", 1.0)))
    else:
        raise InputError(f"train.candidates: unknown model kind {kind!r}")
    if kind == "embed_prior":
        # Blended with the lexicon, which brings the cues. The learnt frame head sees only the
        # embedding and prototype similarities: given cue counts too, it learns "no cue, no frame"
        # from the seeds and shares the lexicon's blind spot for paraphrases. The stance head
        # also gets the per-label cue counts (frames inform stance: a pariah frame reads critical).
        meaning = [j for j, v in enumerate(vocabulary) if v.startswith("emb__")]
        with_counts = [j for j, v in enumerate(vocabulary) if not v.startswith("cue__")]
        w = float(hp.get("prior_weight", 0.5))
        prior_frames, prior_stance = lexicon()
        return (BlendedHead(MultiLabelHead(clone(base)), prior_frames, w, meaning),
                BlendedHead(StanceHead(clone(base), n_stance), prior_stance, w, with_counts))
    return MultiLabelHead(clone(base)), StanceHead(clone(base), n_stance)


def fit_candidate(kind: str, hp: dict, split: Split, data: Data, schema: LabelSchema, fp: FeatureParams, seed: int,
                  embeddings: str | Path | None = None):
    """Fit featuriser and both heads on ``split``; returns (featurizer, frames head, stance head)."""
    feat = make_featurizer(kind, fp, schema, embeddings)
    X = feat.fit_transform(split.texts)
    frames_head, stance_head = make_heads(kind, hp, data.frame_names, data.stance_names, schema,
                                          list(feat.get_feature_names_out()), seed)
    with warnings.catch_warnings():
        # Tiny folds make liblinear/lbfgs warn about convergence; the result is still deterministic.
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*converge.*")
        frames_head.fit(X, split.Y)
        stance_head.fit(X, split.y)
    return feat, frames_head, stance_head


def cross_validate(kind: str, hp: dict, data: Data, schema: LabelSchema, fp: FeatureParams, seed: int,
                   embeddings: str | Path | None = None):
    """Grouped CV over ``fold``: OOF frame and stance probabilities for rows with fold >= 0."""
    tv = data.trainval
    oof_rows = np.flatnonzero(tv.fold >= 0)
    Pf = np.zeros((len(tv.ids), len(data.frame_names)))
    Ps = np.zeros((len(tv.ids), len(data.stance_names)))
    for f in sorted(set(tv.fold[oof_rows].tolist())):
        train_idx, test_idx = np.flatnonzero(tv.fold != f), np.flatnonzero(tv.fold == f)
        feat, fh, sh = fit_candidate(kind, hp, tv.take(train_idx), data, schema, fp, seed, embeddings)
        X = feat.transform([tv.texts[i] for i in test_idx])
        Pf[test_idx], Ps[test_idx] = fh.predict_proba(X), sh.predict_proba(X)
    return oof_rows, Pf[oof_rows], Ps[oof_rows]


def score_split(Y, y, Pf, Ps, thresholds, data: Data, frames_weight: float) -> dict:
    fm = frame_metrics(Y, Pf >= thresholds, data.frame_names)
    sm = stance_metrics(y, Ps)
    return {"frames": fm, "stance": sm, "score": selection_score(fm["macro_f1"], sm["macro_f1"], frames_weight)}


def flat_metrics(prefix: str, scores: dict) -> dict[str, float]:
    """Scalar metrics for MLflow: prefix.frames_macro_f1, prefix.stance_accuracy, ..."""
    out = {f"{prefix}.score": scores["score"]}
    for task in ("frames", "stance"):
        for k, v in scores[task].items():
            if isinstance(v, (int, float)):
                out[f"{prefix}.{task}_{k}"] = float(v)
    for label, m in scores["frames"]["per_label"].items():
        out[f"{prefix}.f1.{label}"] = m["f1"]
    return out


# --------------------------------------------------------------------------- promotion


def decide_promotion(candidate_score: float, champion_score: float | None, *, champion_version: str | None = None,
                     champion_error: str | None = None) -> tuple[bool, str]:
    """Whether the candidate takes the alias, and why. Pure; a worse model never replaces the champion.

    - no current champion → promote;
    - champion could not be evaluated (``champion_error``) → keep it: replacing a model we cannot
      compare would be a blind swap; fix the champion or move the alias by hand;
    - otherwise promote iff candidate_score >= champion_score (ties promote: same quality, newer data).
    """
    if champion_error is not None:
        return False, f"kept champion v{champion_version}: it could not be evaluated on this test split ({champion_error})"
    if champion_score is None:
        return True, "no current champion"
    if round(candidate_score, 12) >= round(champion_score, 12):
        return True, f"test score {candidate_score:.4f} >= champion v{champion_version} {champion_score:.4f}"
    return False, f"test score {candidate_score:.4f} < champion v{champion_version} {champion_score:.4f}; champion kept"


# --------------------------------------------------------------------------- MLflow helpers


def tracking_uri(cwd: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else an absolute sqlite:///<project>/mlflow.db."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(cwd) / 'mlflow.db'}"


def _artifact_location(uri: str) -> str | None:
    """Artifacts beside a local sqlite store (never in the cwd, which may be a temp workspace)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def _experiment_id(mlflow, name: str, uri: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=_artifact_location(uri))


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _pip_requirements() -> list[str]:
    """Pinned to what trained the model; skips MLflow's slow requirement inference (a subprocess per log)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "joblib"):
        with contextlib.suppress(PackageNotFoundError):
            reqs.append(f"{dist}=={version(dist)}")
    return reqs


def log_framing_model(mlflow, model: FramingModel, example_texts: list[str], workdir: Path):
    """Log ``model`` as an MLflow pyfunc named ``model`` in the active run; returns ModelInfo."""
    import joblib
    from mlflow.models import infer_signature

    pkl = workdir / f"{model.name}.pkl"
    joblib.dump(model, pkl)
    # A signature inferred from a Python list gives a model that fails every prediction; use a 1-D str array.
    example = np.asarray(example_texts[:2], dtype=str)
    signature = infer_signature(example, records_frame(model.predict(list(example))))
    with _quiet_mlflow(logging.ERROR):
        return mlflow.pyfunc.log_model(
            name="model", python_model=FramingPyfunc(), artifacts={"model": str(pkl)}, signature=signature,
            input_example=example, pip_requirements=_pip_requirements(),
            code_paths=[str(Path(__file__).resolve().parent)],
        )


def load_registered(uri: str, model_name: str, alias: str) -> tuple[Any, Any]:
    """(ModelVersion, FramingModel) of ``model_name@alias``; (None, None) when the alias does not exist."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=uri)
    try:
        mv = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None, None
    import joblib

    mlflow.set_tracking_uri(uri)
    # Read the FramingModel pickle straight from the logged artifacts instead of
    # unpickling the pyfunc wrapper, so moving the wrapper class breaks no old version.
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}@{alias}", dst_path=tmp))
        (pkl,) = sorted((local / "artifacts").glob("*.pkl"))
        return mv, joblib.load(pkl)


# --------------------------------------------------------------------------- stage


VOLATILE = ("run_id", "model_uri", "train_seconds")


def run(dataset: str | Path, labels: str | Path | LabelSchema, model_out: str | Path, cv_report: str | Path,
        registry_out: str | Path, oof_out: str | Path, params: TrainParams, seed: int = 0,
        tracking: str | None = None, embeddings: str | Path | None = None) -> dict:
    """Select, refit, save, track and (maybe) promote. Returns the registry summary written to ``registry_out``.

    Writes ``model_out`` (joblib FramingModel), ``cv_report`` (per-candidate CV/test scores),
    ``oof_out`` (best candidate's OOF predictions, JSONL) and ``registry_out``.
    ``tracking`` overrides the MLflow tracking URI (default: ``tracking_uri()``); ``embeddings`` is the
    distill stage's static embedding folder, read by the embedding candidates.
    """
    with warnings.catch_warnings():
        # MLflow's dataset schema hint about integer columns (fold, stance codes): they never hold missing values.
        warnings.filterwarnings("ignore", message=".*integer column.*")
        return _run(dataset, labels, model_out, cv_report, registry_out, oof_out, params, seed, tracking, embeddings)


def document_folds(split: Split) -> np.ndarray:
    """Leave-one-document-out fold per row: the index of its document among the split's documents.

    A near-duplicate group spread over several documents goes with its first row's document,
    so no group straddles a held-out document and its training folds.
    """
    group_doc: dict[str, str] = {}
    for group, doc in zip(split.groups, split.docs):
        group_doc.setdefault(group, doc)
    order = {doc: i for i, doc in enumerate(sorted(set(group_doc.values())))}
    return np.array([order[group_doc[g]] for g in split.groups], dtype=int)


def _run(dataset, labels, model_out, cv_report, registry_out, oof_out, params: TrainParams, seed: int,
         tracking: str | None, embeddings: str | Path | None) -> dict:
    import joblib
    import mlflow

    schema = labels if isinstance(labels, LabelSchema) else load_label_schema(labels)
    data = load_data(dataset)
    if params.cv == "document":
        data.trainval.fold = document_folds(data.trainval)
        if len(set(data.trainval.fold.tolist())) < 2:
            raise InputError(f"{dataset}: train+validation passages come from fewer than 2 documents; "
                             "leave-one-document-out needs 2 or more (or set train.cv: fold)")
    if set(schema.frame_names) != set(data.frame_names) or set(schema.stance_names) != set(data.stance_names):
        log.warning("train: label names in %s differ from the labels file; the lexicon matches cues by key", dataset)
    uri = tracking or tracking_uri()
    mlflow.set_tracking_uri(uri)
    exp_id = _experiment_id(mlflow, params.experiment, uri)
    root = project_root()
    tags = {k: v for k, v in {"git_commit": _git_commit(root), "dvc_lock_sha256": _sha256(root / "dvc.lock"),
                               "stage": "train"}.items() if v}
    candidates = params.expanded()
    tv, test = data.trainval, data.test
    with warnings.catch_warnings():
        # "source can be interpreted in multiple ways" and the integer-column hint: both harmless here.
        warnings.simplefilter("ignore", UserWarning)
        ds_train = mlflow.data.from_pandas(tv.frame(), source=str(Path(dataset).resolve()), name="framing-trainval")
        ds_test = mlflow.data.from_pandas(test.frame(), source=str(Path(dataset).resolve()), name="framing-test")
    results: list[dict] = []
    models: dict[str, FramingModel] = {}
    oofs: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            mlflow.start_run(experiment_id=exp_id, run_name="train", tags=tags) as parent:
        mlflow.log_params({"seed": seed, "frames_weight": params.frames_weight, "candidates": len(candidates), "cv": params.cv,
                           "n_trainval": len(tv.ids), "n_test": len(test.ids),
                           "features": json.dumps(asdict(params.features))})
        mlflow.log_input(ds_train, context="training")
        mlflow.log_input(ds_test, context="testing")
        for name, kind, hp in tqdm(candidates, desc="train", unit="candidate", disable=None):
            with mlflow.start_run(experiment_id=exp_id, run_name=name, nested=True, tags={**tags, "kind": kind}) as child:
                t0 = time.perf_counter()
                rows, Pf, Ps = cross_validate(kind, hp, data, schema, params.features, seed, embeddings)
                thresholds = tune_thresholds(tv.Y[rows], Pf, params.threshold_grid)
                cv = score_split(tv.Y[rows], tv.y[rows], Pf, Ps, thresholds, data, params.frames_weight)
                feat, fh, sh = fit_candidate(kind, hp, tv, data, schema, params.features, seed, embeddings)
                model = FramingModel(name=name, schema_version=schema.schema_version, frame_names=data.frame_names,
                                     stance_names=data.stance_names, featurizer=feat, frames_head=fh, stance_head=sh,
                                     thresholds=thresholds, evidence_top_n=params.evidence_top_n,
                                     config={"kind": kind, "hyperparameters": hp, "features": asdict(params.features),
                                             "seed": seed})
                seconds = time.perf_counter() - t0
                ts = score_split(test.Y, test.y, model.predict_proba_frames(test.texts),
                                 model.predict_proba_stance(test.texts), thresholds, data, params.frames_weight)
                mlflow.log_params({"kind": kind, **{f"hp.{k}": v for k, v in hp.items()},
                                   **{f"threshold.{n}": float(t) for n, t in zip(data.frame_names, thresholds)}})
                mlflow.log_metrics({**flat_metrics("cv", cv), **flat_metrics("test", ts), "train_seconds": seconds})
                mlflow.log_input(ds_train, context="training")
                mlflow.log_input(ds_test, context="testing")
                info = None
                if params.log_models == "all":
                    info = log_framing_model(mlflow, model, tv.texts, Path(tmp))
                results.append({"name": name, "kind": kind, "hyperparameters": hp, "run_id": child.info.run_id,
                                "model_uri": info.model_uri if info else None,
                                "thresholds": dict(zip(data.frame_names, map(float, thresholds))),
                                "cv": cv, "test": ts, "train_seconds": round(seconds, 3)})
                models[name], oofs[name] = model, (rows, Pf, Ps)
                log.info("train: %-28s cv score %.4f (frames macro F1 %.3f, stance macro F1 %.3f)", name,
                         cv["score"], cv["frames"]["macro_f1"], cv["stance"]["macro_f1"])
        # max() keeps the first of equal keys: ties → higher stance F1 → earlier candidate (baselines first).
        best = max(results, key=lambda r: (round(r["cv"]["score"], 12), round(r["cv"]["stance"]["macro_f1"], 12)))
        model = models[best["name"]]
        versus = _versus_baseline(data, models, oofs, best, seed)
        if best["model_uri"] is None:
            with mlflow.start_run(run_id=best["run_id"], nested=True):
                best["model_uri"] = log_framing_model(mlflow, model, tv.texts, Path(tmp)).model_uri
        with atomic_open(model_out, "wb") as fh:
            joblib.dump(model, fh)
        _write_oof(oof_out, data, *oofs[best["name"]], model.thresholds)
        summary = _register(mlflow, uri, params, best, data)
        summary.update({"parent_run_id": parent.info.run_id, "experiment_id": exp_id, "tracking_uri": uri,
                        "best_candidate": best["name"], "best_run_id": best["run_id"], "model_uri": best["model_uri"],
                        "candidate_run_ids": {r["name"]: r["run_id"] for r in results},
                        "train_seconds": {r["name"]: r["train_seconds"] for r in results}})
        mlflow.log_metrics({"best.cv.score": best["cv"]["score"], "best.test.score": best["test"]["score"],
                            **{f"best.vs_lexicon.{k}": v for k, v in (versus or {}).items() if k.endswith("_gain")}})
        mlflow.set_tags({"best_candidate": best["name"], "registered_version": str(summary.get("version")),
                         "promoted": str(summary.get("promoted"))})
    write_json(cv_report, {"selection": {"formula": "frames_weight * frames_macro_f1 + (1 - frames_weight) * stance_macro_f1",
                                         "frames_weight": params.frames_weight, "cv": params.cv,
                                         "folds": int(len(set(tv.fold[tv.fold >= 0].tolist()))), "best": best["name"],
                                         "versus_lexicon": versus},
                           # Only what the data, params and seed determine: the file is a DVC metric, and two
                           # identical runs must give identical metrics (run ids and timings are in MLflow
                           # and in registry_out).
                           "candidates": [{k: v for k, v in r.items() if k not in VOLATILE} for r in results]})
    write_json(registry_out, summary)
    log.info("train: best %s (cv score %.4f, test score %.4f); %s", best["name"], best["cv"]["score"],
             best["test"]["score"], summary["reason"])
    return summary


def _versus_baseline(data: Data, models: dict, oofs: dict, best: dict, seed: int,
                     baseline: str = "lexicon") -> dict | None:
    """The winner's out-of-fold macro-F1 gain over the keyword baseline on the same passages, with
    paired bootstrap intervals: a gain whose interval includes 0 is not distinguishable from noise."""
    if baseline not in models:
        return None

    def decisions(name: str):
        rows, Pf, Ps = oofs[name]
        return Pf >= models[name].thresholds, Ps

    rows = oofs[best["name"]][0]
    return {"baseline": baseline, **paired_gain(data.trainval.Y[rows], data.trainval.y[rows],
                                                decisions(best["name"]), decisions(baseline), seed)}


def _write_oof(path, data: Data, rows, Pf, Ps, thresholds) -> None:
    tv = data.trainval
    with atomic_open(path) as fh:
        for k, i in enumerate(rows):
            fh.write(json.dumps({
                "id": tv.ids[i], "fold": int(tv.fold[i]),
                "frames_true": tv.Y[i].astype(int).tolist(), "frames_proba": [float(p) for p in Pf[k]],
                "frames_pred": (Pf[k] >= thresholds).astype(int).tolist(),
                "stance_true": int(tv.y[i]), "stance_proba": [float(p) for p in Ps[k]],
            }) + "\n")


def _register(mlflow, uri: str, params: TrainParams, best: dict, data: Data) -> dict:
    """Register the best model and move the alias only if decide_promotion says so."""
    summary: dict[str, Any] = {"model_name": params.model_name, "alias": params.alias, "registered": False,
                               "version": None, "promoted": False, "previous_champion_version": None,
                               "champion_version": None, "champion_test_score": None,
                               "candidate_test_score": best["test"]["score"]}
    if not params.register:
        summary["reason"] = "registration disabled (train.register: false)"
        return summary
    champ_score = champ_version = error = None
    try:
        mv, champion = load_registered(uri, params.model_name, params.alias)
    except Exception as exc:  # a champion that cannot be loaded must not be silently replaced
        mv, champion, error = None, None, f"load failed: {exc}"
        with contextlib.suppress(Exception):
            champ_version = str(mlflow.MlflowClient(uri).get_model_version_by_alias(params.model_name, params.alias).version)
    if mv is not None:
        champ_version = str(mv.version)
        if champion.frame_names != data.frame_names or champion.stance_names != data.stance_names:
            error = "its label names differ from the dataset's"
        else:
            t = data.test
            try:
                champ_score = score_split(t.Y, t.y, champion.predict_proba_frames(t.texts),
                                          champion.predict_proba_stance(t.texts), champion.thresholds, data,
                                          params.frames_weight)["score"]
            except Exception as exc:  # same rule as a failed load: never a blind swap
                error = f"prediction failed: {type(exc).__name__}: {exc}"
    promote, reason = decide_promotion(best["test"]["score"], champ_score, champion_version=champ_version,
                                       champion_error=error)
    client = mlflow.MlflowClient(uri)
    with _quiet_mlflow():
        version = mlflow.register_model(best["model_uri"], params.model_name).version
    for key, value in {"candidate": best["name"], "run_id": best["run_id"], "test_score": f"{best['test']['score']:.6f}",
                       "cv_score": f"{best['cv']['score']:.6f}", "promoted": str(promote), "decision": reason}.items():
        client.set_model_version_tag(params.model_name, version, key, value)
    if promote:
        client.set_registered_model_alias(params.model_name, params.alias, version)
    else:
        log.warning("train: not promoting %s v%s: %s", params.model_name, version, reason)
    summary.update({"registered": True, "version": str(version), "promoted": promote, "reason": reason,
                    "previous_champion_version": champ_version, "champion_test_score": champ_score,
                    "champion_version": str(version) if promote else champ_version})
    return summary


@contextlib.contextmanager
def _quiet_mlflow(level: int = logging.WARNING):
    """Mute MLflow chatter: registry messages printed to stderr ("Successfully registered ...") and
    per-model log lines (the CloudPickle notice, "Validating input example"); errors still raise."""
    logger = logging.getLogger("mlflow")
    old = logger.level
    logger.setLevel(level)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            yield
    finally:
        logger.setLevel(old)
        if sink.getvalue().strip():
            log.debug("mlflow: %s", sink.getvalue().strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing train", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--dataset", default="data/dataset")
    parser.add_argument("--model", default="models/model.pkl")
    parser.add_argument("--cv-report", default="metrics/cv.json")
    parser.add_argument("--registry", default="models/registry.json")
    parser.add_argument("--oof", default="models/cv_predictions.jsonl")
    parser.add_argument("--embeddings", default=None, help="the distill stage's static embedding folder")
    args = parser.parse_args(argv)
    all_params = load_params(args.params)
    params = TrainParams.from_mapping(all_params.extra.get("train") or {}, f"{args.params}: train")
    summary = run(args.dataset, load_label_schema(args.labels), args.model, args.cv_report, args.registry, args.oof,
                  params, all_params.seed, embeddings=args.embeddings)
    print(json.dumps({k: summary[k] for k in ("best_candidate", "version", "promoted", "reason")}))
