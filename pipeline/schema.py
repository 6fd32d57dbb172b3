"""Typed, frozen view of configs/labels.yaml: the annotation tasks (frames, stance, flags), their
display names, definitions, cue phrases, worked examples and negators.

The single source of truth for the labels: the Label Studio config, the guidelines, the
annotation reader and the lexicon features all read it through ``load_label_schema``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline.fsutil import read_yaml
from pipeline.errors import InputError

LABELS_PATH = Path("configs/labels.yaml")

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
    hard_cases: tuple[str, ...] = ()  # how the definitions apply to cases annotators found open

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
    raw = read_yaml(path)
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
        hard_cases=_sentences(raw.get("hard_cases"), f"{where}: hard_cases"),
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


def _sentences(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise InputError(f"{where}: expected a list of non-empty strings")
    return tuple(" ".join(x.split()) for x in raw)
