"""Typed, frozen views of configs/params.yaml and configs/labels.yaml.

Each is loaded once, in an entry point, and passed down; stages never read YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from pipeline.errors import InputError

PARAMS_PATH = Path("configs/params.yaml")
LABELS_PATH = Path("configs/labels.yaml")


def _build(cls, raw: Mapping[str, Any], where: str):
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise InputError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class DedupParams:
    shingle_words: int = 3
    num_perm: int = 64
    bands: int = 16
    threshold: float = 0.6

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise InputError(f"ingest.dedup: num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")


@dataclass(frozen=True)
class IngestParams:
    input_dir: str = "seeds"
    txt_paragraphs: str = "line"
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
        if self.txt_paragraphs not in ("line", "blank_line"):
            raise InputError(f"ingest.txt_paragraphs: expected 'line' or 'blank_line', got {self.txt_paragraphs!r}")
        for name in ("navigation", "credits", "end_markers"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
            for pattern in getattr(self, name):
                _check_regex(f"ingest.{name}", pattern)
        for name in ("sentence_end", "date_pattern", "teaser"):
            _check_regex(f"ingest.{name}", getattr(self, name))
        if isinstance(self.dedup, Mapping):
            object.__setattr__(self, "dedup", _build(DedupParams, self.dedup, "ingest.dedup"))


@dataclass(frozen=True)
class DatasetParams:
    annotations_dir: str = "labels/annotations"
    group_by: str = "cluster"
    test_fraction: float = 0.2
    validation_fraction: float = 0.15
    cv_folds: int = 4

    def __post_init__(self) -> None:
        if self.group_by not in ("cluster", "document"):
            raise InputError(f"dataset.group_by: expected 'cluster' or 'document', got {self.group_by!r}")
        if not (0 < self.test_fraction < 0.5 and 0 <= self.validation_fraction < 0.5):
            raise InputError("dataset: test_fraction must be in (0, 0.5) and validation_fraction in [0, 0.5)")
        if self.cv_folds < 2:
            raise InputError(f"dataset.cv_folds: must be >= 2, got {self.cv_folds}")


def _check_regex(where: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Params:
    """All stage parameters; one attribute per stage key in params.yaml."""

    seed: int
    ingest: IngestParams
    dataset: DatasetParams
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of stages added later

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = str(PARAMS_PATH)) -> "Params":
        raw = dict(raw or {})
        seed = raw.pop("seed", 0)
        if not isinstance(seed, int):
            raise InputError(f"{where}: seed must be an integer, got {seed!r}")
        ingest = _build(IngestParams, raw.pop("ingest", {}) or {}, f"{where}: ingest")
        dataset = _build(DatasetParams, raw.pop("dataset", {}) or {}, f"{where}: dataset")
        return cls(seed=seed, ingest=ingest, dataset=dataset, extra=raw)


def load_params(path: str | Path = PARAMS_PATH) -> Params:
    """Load and validate params.yaml."""
    return Params.from_mapping(_read_yaml(path), str(path))


def _read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}") from None


@dataclass(frozen=True)
class Label:
    key: str
    display: str
    definition: str
    cues: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSchema:
    """The annotation tasks: multi-label frames, single-label stance, flags."""

    schema_version: int
    target: str
    frames: tuple[Label, ...]
    stance: tuple[Label, ...]
    flags: tuple[Label, ...]
    negators: tuple[str, ...] = ()  # words/phrases that cancel a cue found shortly after them

    @property
    def frame_names(self) -> list[str]:
        return [label.key for label in self.frames]

    @property
    def stance_names(self) -> list[str]:
        return [label.key for label in self.stance]

    def frame_key(self, value: str) -> str | None:
        """Map a key or display name (as Label Studio exports it) to a frame key."""
        return _lookup(self.frames, value)

    def stance_key(self, value: str) -> str | None:
        return _lookup(self.stance, value)

    def flag_key(self, value: str) -> str | None:
        return _lookup(self.flags, value)


def _lookup(labels: tuple[Label, ...], value: str) -> str | None:
    for label in labels:
        if value in (label.key, label.display):
            return label.key
    return None


def _labels(raw: Any, where: str) -> tuple[Label, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{where}: expected a non-empty mapping of labels")
    out = []
    for key, spec in raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
            raise InputError(f"{where}.{key}: label keys must be lower_snake_case")
        if not isinstance(spec, Mapping) or not spec.get("display") or not spec.get("definition"):
            raise InputError(f"{where}.{key}: needs 'display' and 'definition'")
        out.append(
            Label(
                key=str(key),
                display=str(spec["display"]),
                definition=" ".join(str(spec["definition"]).split()),
                cues=tuple(str(c) for c in spec.get("cues", []) or []),
                examples=tuple(str(e) for e in spec.get("examples", []) or []),
            )
        )
    displays = [label.display for label in out]
    if len(set(displays)) != len(displays):
        raise InputError(f"{where}: display names must be unique")
    return tuple(out)


def load_label_schema(path: str | Path = LABELS_PATH) -> LabelSchema:
    """Load and validate labels.yaml."""
    raw = _read_yaml(path)
    where = str(path)
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping at top level")
    for key in ("frames", "stance"):
        if not isinstance(raw.get(key), Mapping) or "labels" not in raw[key]:
            raise InputError(f"{where}: missing '{key}.labels'")
    return LabelSchema(
        schema_version=int(raw.get("schema_version", 1)),
        target=str(raw.get("target", "")),
        frames=_labels(raw["frames"]["labels"], f"{where}: frames.labels"),
        stance=_labels(raw["stance"]["labels"], f"{where}: stance.labels"),
        flags=_labels(raw.get("flags") or {"off_topic": {"display": "Off-topic", "definition": "Off-topic."}}, f"{where}: flags"),
        negators=_phrases(raw.get("negators"), f"{where}: negators"),
    )


def _phrases(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{where}: expected a list of words or phrases")
    for i, phrase in enumerate(raw):
        if not isinstance(phrase, str) or not phrase.strip():
            hint = " (quote it: YAML reads a bare no/yes as a boolean)" if isinstance(phrase, bool) else ""
            raise InputError(f"{where}[{i}]: expected a non-empty string, got {phrase!r}{hint}")
    return tuple(" ".join(p.lower().split()) for p in raw)
