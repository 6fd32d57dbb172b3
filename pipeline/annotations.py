"""Label Studio JSON exports ↔ internal annotation records.

The seed annotations under labels/annotations/ are in exactly the format a
Label Studio JSON export produces, so the pipeline reads one format only.
Control names come from pipeline.labels; choice values may be display names
(as Label Studio exports them) or label keys.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pipeline.schema import LabelSchema
from pipeline.errors import InputError
from pipeline.labels import FLAGS_NAME, FRAMES_NAME, STANCE_NAME, TEXT_NAME


@dataclass(frozen=True)
class AnnotationRecord:
    """One annotator's judgement of one passage."""

    file: str
    task_id: int
    annotation_id: int | None
    passage_id: str
    annotator: str
    frames: frozenset[str]
    stance: str | None
    off_topic: bool
    cancelled: bool
    updated_at: str
    doc_id: str | None = None
    paragraph_index: int | None = None
    adjudication: bool = False  # an adjudicator's decision on a disagreement, not a third vote


def latest_judgements(records: Iterable[AnnotationRecord]) -> dict[tuple[str, str], AnnotationRecord]:
    """(passage id, annotator) → that annotator's latest non-cancelled judgement of the passage.

    The one place the rule lives: the dataset's labels and every agreement figure count exactly
    these. Later ``updated_at`` wins; of equal timestamps, the record read last. Adjudications
    are not judgements (``latest_adjudications``): an adjudicator is never a third vote.
    """
    latest: dict[tuple[str, str], AnnotationRecord] = {}
    for record in records:
        if record.cancelled or record.adjudication:
            continue
        key = (record.passage_id, record.annotator)
        if key not in latest or record.updated_at >= latest[key].updated_at:
            latest[key] = record
    return latest


def latest_adjudications(records: Iterable[AnnotationRecord]) -> dict[str, AnnotationRecord]:
    """passage id → the latest non-cancelled adjudication of the passage (it decides the labels)."""
    latest: dict[str, AnnotationRecord] = {}
    for record in records:
        if record.adjudication and not record.cancelled:
            if record.passage_id not in latest or record.updated_at >= latest[record.passage_id].updated_at:
                latest[record.passage_id] = record
    return latest


def _annotator(value: Any) -> str:
    if isinstance(value, dict):  # exports can inline the user object
        return str(value.get("email") or value.get("id"))
    return str(value)


def parse_task(task: Any, schema: LabelSchema, where: str, adjudicators: Iterable[str] = ()) -> list[AnnotationRecord]:
    """Records of one exported task; raises InputError naming ``where`` and the task id.

    A record is an adjudication when its task is an adjudication task (``data.adjudication``:
    true, as `framing labelstudio adjudicate` creates them) or its annotator is one of
    ``adjudicators`` (``dataset.adjudicators``, for exports made before adjudication tasks existed).
    """
    adjudicators = set(adjudicators)
    if not isinstance(task, dict):
        raise InputError(f"{where}: each task must be a JSON object, got {type(task).__name__}")
    task_id = task.get("id")
    here = f"{where}: task {task_id}"
    if not isinstance(task_id, int):
        raise InputError(f"{where}: a task has no integer 'id'")
    data = task.get("data")
    if not isinstance(data, dict):
        raise InputError(f"{here}: missing field 'data'")
    for key in (TEXT_NAME, "passage_id"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"{here}: missing field 'data.{key}'")
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise InputError(f"{here}: field 'annotations' must be a list")
    records = []
    for ann in annotations:
        if not isinstance(ann, dict) or not isinstance(ann.get("result", []), list):
            raise InputError(f"{here}: malformed annotation (needs an object with a 'result' list)")
        ann_here = f"{here}, annotation {ann.get('id')}"
        if "completed_by" not in ann:
            raise InputError(f"{ann_here}: missing field 'completed_by'")
        frames: set[str] = set()
        stance = None
        off_topic = False
        for result in ann.get("result", []):
            name = result.get("from_name") if isinstance(result, dict) else None
            choices = (result.get("value") or {}).get("choices") if isinstance(result, dict) else None
            if name not in (FRAMES_NAME, STANCE_NAME, FLAGS_NAME):
                raise InputError(f"{ann_here}: unknown control {name!r} (expected {FRAMES_NAME}, {STANCE_NAME} or {FLAGS_NAME})")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise InputError(f"{ann_here}: field 'value.choices' of {name!r} must be a list of strings")
            for choice in choices:
                if name == FRAMES_NAME:
                    key = schema.frame_key(choice)
                    if key is None:
                        raise InputError(f"{ann_here}: unknown frame label {choice!r}; allowed: {schema.frame_names}")
                    frames.add(key)
                elif name == STANCE_NAME:
                    key = schema.stance_key(choice)
                    if key is None:
                        raise InputError(f"{ann_here}: unknown stance label {choice!r}; allowed: {schema.stance_names}")
                    if stance is not None and stance != key:
                        raise InputError(f"{ann_here}: stance is single-label but has {stance!r} and {key!r}")
                    stance = key
                else:
                    if schema.flag_key(choice) is None:
                        raise InputError(f"{ann_here}: unknown flag {choice!r}")
                    off_topic = True
        cancelled = bool(ann.get("was_cancelled", False))
        if not cancelled and not off_topic and stance is None:
            raise InputError(f"{ann_here}: missing stance (every on-topic annotation needs one)")
        records.append(AnnotationRecord(
            file=where, task_id=task_id, annotation_id=ann.get("id"), passage_id=data["passage_id"],
            annotator=_annotator(ann["completed_by"]), frames=frozenset(frames), stance=stance,
            off_topic=off_topic, cancelled=cancelled,
            updated_at=str(ann.get("updated_at") or ann.get("created_at") or ""),
            doc_id=data.get("doc_id"), paragraph_index=data.get("paragraph_index"),
            adjudication=data.get("adjudication") is True or _annotator(ann["completed_by"]) in adjudicators,
        ))
    return records


def export_text(path: str | Path) -> str:
    """The JSON text of an export file: ``*.json``, or ``*.json.gz`` (a large export kept compressed in git)."""
    path = Path(path)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable gzip file ({exc})") from None
    return data.decode("utf-8")


def read_export(path: str | Path, schema: LabelSchema, adjudicators: Iterable[str] = ()) -> list[AnnotationRecord]:
    """All annotation records in one Label Studio JSON export file (``*.json`` or ``*.json.gz``)."""
    path = Path(path)
    try:
        tasks = json.loads(export_text(path))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed export ({exc.msg})") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: a Label Studio JSON export is a list of tasks")
    return [record for task in tasks for record in parse_task(task, schema, str(path), adjudicators)]


def export_files(directory: str | Path) -> list[Path]:
    """Every ``*.json`` and ``*.json.gz`` export under ``directory``, sorted by path; InputError if one
    export is there in both forms (its annotations would count twice)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: annotations folder not found")
    paths = sorted([*directory.rglob("*.json"), *directory.rglob("*.json.gz")])
    for path in paths:
        if path.name.endswith(".gz") and path.with_suffix("") in paths:
            raise InputError(f"{path.with_suffix('')} and {path}: the same export twice; keep one of them")
    return paths


def read_exports(directory: str | Path, schema: LabelSchema, adjudicators: Iterable[str] = ()) -> list[AnnotationRecord]:
    """Records of every export under ``directory`` (``export_files``)."""
    return [r for path in export_files(directory) for r in read_export(path, schema, adjudicators)]


def choices_results(schema: LabelSchema, frames: Iterable[str], stance: str | None, off_topic: bool = False) -> list[dict]:
    """Label Studio `result` items for a judgement (display names as choice values)."""
    display = {label.key: label.display for label in (*schema.frames, *schema.stance, *schema.flags)}
    results = []

    def add(name: str, values: list[str]) -> None:
        results.append({"from_name": name, "to_name": TEXT_NAME, "type": "choices",
                        "value": {"choices": values}, "origin": "manual"})

    frames = [f for f in schema.frame_names if f in set(frames)]
    if frames:
        add(FRAMES_NAME, [display[f] for f in frames])
    if stance is not None:
        add(STANCE_NAME, [display[stance]])
    if off_topic:
        add(FLAGS_NAME, [schema.flags[0].display])
    for i, result in enumerate(results):
        result["id"] = f"{result['from_name']}-{i}"
    return results
