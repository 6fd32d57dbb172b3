"""Typed, frozen view of configs/params.yaml: one dataclass per stage, every stage default here.

``load_params`` reads the YAML once, in an entry point, and ``pipeline.typed.build`` turns
each stage's mapping into its dataclass: one unknown-key check, one type check per field
(from the annotations), then the class's own range checks in ``__post_init__``. The
candidates' hyperparameters and their defaults belong to the model families
(``pipeline.families``). Stages never read YAML themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from pipeline.errors import InputError
from pipeline.families import FAMILIES  # the families own their hyperparameters and defaults
from pipeline.fsutil import read_yaml
from pipeline.typed import build

PARAMS_PATH = Path("configs/params.yaml")


def _check_regex(where: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


# --------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class DedupParams:
    shingle_words: int = 3
    num_perm: int = 64
    bands: int = 16
    threshold: float = 0.6

    def __post_init__(self) -> None:
        _require(self.num_perm % self.bands == 0,
                 f"ingest.dedup: num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")


@dataclass(frozen=True)
class IngestParams:
    # Folders of raw documents, read in this order (dvc.yaml lists them as the stage's deps too).
    input_dirs: tuple[str, ...] = ("seeds", "corpus/documents")
    txt_paragraphs: Literal["line", "blank_line"] = "line"
    min_words: int = 8
    sentence_end: str = r"[.!?…][\"”’'\)\]]*$"
    date_pattern: str = r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b\s*"
    navigation: tuple[str, ...] = ()
    credits: tuple[str, ...] = ()
    caption_lookback: int = 2
    end_markers: tuple[str, ...] = ()
    teaser: str = r"\[\.\.\.\]$"
    dedup: DedupParams = field(default_factory=DedupParams)

    def __post_init__(self) -> None:
        for name in ("navigation", "credits", "end_markers"):
            for pattern in getattr(self, name):
                _check_regex(f"ingest.{name}", pattern)
        for name in ("sentence_end", "date_pattern", "teaser"):
            _check_regex(f"ingest.{name}", getattr(self, name))


@dataclass(frozen=True)
class DatasetParams:
    annotations_dir: str = "labels/annotations"
    # What never straddles two splits: "outlet" (whole outlets: scores reflect unseen outlets),
    # "document" (whole documents) or "cluster" (near-duplicate clusters); see pipeline/splits.py.
    group_by: Literal["cluster", "document", "outlet"] = "outlet"
    test_fraction: float = 0.2
    validation_fraction: float = 0.15
    cv_folds: int = 5
    # Annotators whose judgements are adjudications (they decide disagreements and are not a third
    # vote), for exports made before adjudication tasks existed; adjudication tasks mark themselves.
    adjudicators: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(0 < self.test_fraction < 0.5 and 0 <= self.validation_fraction < 0.5,
                 "dataset: test_fraction must be in (0, 0.5) and validation_fraction in [0, 0.5)")
        _require(self.cv_folds >= 2, f"dataset.cv_folds: must be >= 2, got {self.cv_folds}")


@dataclass(frozen=True)
class DistillParams:
    base_model: Literal["all-MiniLM-L6-v2"] = "all-MiniLM-L6-v2"
    pca_dims: int = 256

    def __post_init__(self) -> None:
        _require(8 <= self.pca_dims <= 384, f"distill.pca_dims: expected an integer in [8, 384], got {self.pca_dims!r}")


@dataclass(frozen=True)
class FeatureParams:
    """TF-IDF featuriser: word n-grams plus (optionally) char_wb n-grams, joined by a FeatureUnion."""

    word_ngram: tuple[int, int] = (1, 2)
    char_ngram: tuple[int, int] | None = (3, 5)  # null: word n-grams only
    min_df: int = 1
    max_features: int | None = 20000
    sublinear_tf: bool = True

    def __post_init__(self) -> None:
        for name in ("word_ngram", "char_ngram"):
            value = getattr(self, name)
            _require(value is None or 1 <= value[0] <= value[1],
                     f"train.features.{name}: expected [min_n, max_n] with 1 <= min_n <= max_n, got {list(value or ())}")
        _require(self.min_df >= 1, f"train.features.min_df: expected an integer >= 1, got {self.min_df!r}")


@dataclass(frozen=True)
class CandidateGrid:
    """A model family (``kind``) and a small grid of its hyperparameters; each grid point is one candidate."""

    kind: str
    grid: tuple[tuple[str, tuple], ...] = ()


def _candidate_grids(raw: Any, where: str) -> tuple[CandidateGrid, ...]:
    """``{kind: {grid: {param: [values]}}}`` → CandidateGrids (mapping order kept); kinds and keys are the families'."""
    _require(isinstance(raw, Mapping) and bool(raw), f"{where}: expected a non-empty mapping of model kind → {{grid: ...}}")
    out = []
    for kind, spec in raw.items():
        _require(kind in FAMILIES, f"{where}.{kind}: unknown model kind; expected one of {list(FAMILIES)}")
        spec = spec or {}
        _require(isinstance(spec, Mapping) and set(spec) <= {"grid"},
                 f"{where}.{kind}: expected a mapping with one key 'grid'")
        grid = spec.get("grid") or {}
        allowed = FAMILIES[kind].hyperparameter_names()
        _require(isinstance(grid, Mapping), f"{where}.{kind}.grid: expected a mapping")
        unknown = set(grid) - set(allowed)
        _require(not unknown, f"{where}.{kind}.grid: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        items = []
        for key, values in grid.items():
            values = values if isinstance(values, list) else [values]
            _require(bool(values), f"{where}.{kind}.grid.{key}: empty list of values")
            for value in values:
                FAMILIES[kind].check(key, value, f"{where}.{kind}.grid.{key}")
            items.append((key, tuple(values)))
        out.append(CandidateGrid(kind, tuple(items)))
    return tuple(out)


@dataclass(frozen=True)
class TrainParams:
    """params.yaml ``train:``: selection, thresholds, MLflow names and the candidate grids."""

    experiment: str = "framing-pipeline"      # MLflow experiment
    model_name: str = "framing-classifier"    # registered model
    alias: str = "champion"                   # moved only if the new model is at least as good
    register: bool = True
    frames_weight: float = 0.75
    threshold_grid: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    evidence_top_n: int = 5
    log_models: Literal["all", "best"] = "all"
    # Model selection and threshold tuning on out-of-fold predictions of: "outlet" = the dataset's
    # folds of whole outlets (scores reflect unseen outlets; cost bounded by dataset.cv_folds),
    # "fold" = the dataset's folds whatever its grouping, "document" = leave-one-document-out.
    cv: Literal["outlet", "fold", "document"] = "outlet"
    # CV folds and the final refit run this many at a time in worker processes (1: in this
    # process); the scores do not depend on it.
    n_jobs: int = 2
    features: FeatureParams = field(default_factory=FeatureParams)
    candidates: tuple[CandidateGrid, ...] = field(
        default=(CandidateGrid("embed_prior", (("C", (1.0, 10.0)), ("prior_weight", (0.5, 0.7)))),),
        metadata={"parse": lambda raw, where: _candidate_grids(raw, where)})

    def __post_init__(self) -> None:
        _require(0.0 <= self.frames_weight <= 1.0,
                 f"train.frames_weight: expected a number in [0, 1], got {self.frames_weight!r}")
        _require(bool(self.threshold_grid) and all(0 < t < 1 for t in self.threshold_grid),
                 "train.threshold_grid: expected a non-empty list of numbers in (0, 1)")
        _require(self.evidence_top_n >= 0, "train.evidence_top_n: expected an integer >= 0")
        _require(self.n_jobs >= 1, f"train.n_jobs: expected an integer >= 1, got {self.n_jobs!r}")


@dataclass(frozen=True)
class EvaluateParams:
    bootstrap_reps: int = 1000         # percentile bootstrap for F1 intervals
    reliability_bins: int = 10
    log_to_mlflow: bool = True         # metrics, PNGs and the card go into the train stage's parent run

    def __post_init__(self) -> None:
        _require(self.bootstrap_reps >= 10, f"evaluate.bootstrap_reps: expected an integer >= 10, got {self.bootstrap_reps!r}")
        _require(2 <= self.reliability_bins <= 50, "evaluate.reliability_bins: expected an integer in [2, 50]")


@dataclass(frozen=True)
class LabelStudioParams:
    """The annotation project: titles, overlap and the ML backend's URL."""

    title: str = "Framing: Russia–North Korea passages"
    adjudication_title: str = "Framing: adjudication of disagreements"
    # Overlap: `overlap_percent` % of the tasks are labelled by `annotators_per_task` annotators
    # each (the rest by one), so the agreement report and adjudication always have material.
    annotators_per_task: int = 2
    overlap_percent: int = 100
    backend_url: str = "http://127.0.0.1:3000/labelstudio"  # the prediction service's ML backend

    def __post_init__(self) -> None:
        for key in ("title", "adjudication_title"):  # Label Studio refuses longer project titles
            _require(1 <= len(getattr(self, key)) <= 50,
                     f"labelstudio.{key}: expected 1 to 50 characters, got {len(getattr(self, key))}")
        _require(1 <= self.annotators_per_task <= 10, "labelstudio.annotators_per_task: expected 1 to 10")
        _require(0 <= self.overlap_percent <= 100, "labelstudio.overlap_percent: expected 0 to 100")


@dataclass(frozen=True)
class ReportParams:
    """`framing report`: how predictions of an archive are charted."""

    max_months: int = 36       # a span of up to this many months is charted by month, a longer one by year
    max_outlets: int = 25      # the most frequent outlets charted one by one; the rest are named in a note
    thin: int = 10             # buckets with fewer passages than this are marked "thin" (wide intervals)
    top_phrases: int = 10      # evidence phrases listed per frame
    examples: int = 3          # example passages per frame: this many highest-confidence and this many borderline

    def __post_init__(self) -> None:
        for name in ("max_months", "max_outlets", "top_phrases", "examples"):
            _require(getattr(self, name) >= 1, f"report.{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        _require(self.thin >= 0, f"report.thin: expected an integer >= 0, got {self.thin!r}")


@dataclass(frozen=True)
class MonitorParams:
    """`framing monitor`: drift of served predictions from the champion's training data."""

    # Population stability index above which a label (or text length) has drifted: `framing monitor`
    # then exits with status 1. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large.
    drift_threshold: float = 0.25
    min_predictions: int = 30  # with fewer logged predictions, drift is reported but not judged
    low_confidence: float = 0.5  # a prediction whose confidence (1 - mean normalised entropy) is below this is "low"
    length_bins: int = 10      # quantile bins of the training texts' length, for the length PSI
    max_time_buckets: int = 48  # the finest of minute/hour/day/week/month giving at most this many buckets

    def __post_init__(self) -> None:
        _require(self.drift_threshold > 0, f"monitor.drift_threshold: expected a number > 0, got {self.drift_threshold!r}")
        _require(self.min_predictions >= 1, "monitor.min_predictions: expected an integer >= 1")
        _require(0 < self.low_confidence < 1, "monitor.low_confidence: expected a number in (0, 1)")
        _require(2 <= self.length_bins <= 100, "monitor.length_bins: expected an integer in [2, 100]")
        _require(self.max_time_buckets >= 2, "monitor.max_time_buckets: expected an integer >= 2")


@dataclass(frozen=True)
class Params:
    """All stage parameters; one attribute per top-level key of params.yaml."""

    seed: int = 0
    ingest: IngestParams = field(default_factory=IngestParams)
    dataset: DatasetParams = field(default_factory=DatasetParams)
    distill: DistillParams = field(default_factory=DistillParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    labelstudio: LabelStudioParams = field(default_factory=LabelStudioParams)
    report: ReportParams = field(default_factory=ReportParams)
    monitor: MonitorParams = field(default_factory=MonitorParams)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str = str(PARAMS_PATH)) -> "Params":
        try:
            return build(cls, raw, f"{where}:")
        except InputError as exc:  # range checks in __post_init__ name the key, not the file
            message = str(exc)
            raise InputError(message if message.startswith(where) else f"{where}: {message}") from None


def load_params(path: str | Path = PARAMS_PATH) -> Params:
    """Load and validate params.yaml."""
    return Params.from_mapping(read_yaml(path), str(path))
