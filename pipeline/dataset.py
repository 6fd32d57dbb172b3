"""Stage `dataset`: passages + Label Studio annotations → Hugging Face DatasetDict.

Joins passages and annotations by passage id, resolves several annotators by majority vote
per label (an adjudicator's decision, where there is one, wins); off-topic passages are kept with no
frame and no stance (stance -1), so the frame heads learn what a distractor looks like, and splits into train /
validation / test so that no group (``dataset.group_by``: whole outlets by default) crosses
splits; split and CV fold of a group depend on its name and the seed only (``pipeline.splits``),
so the test split never moves when annotations are added. Passage metadata (outlet, outlet
type, country, year, event, genre) is kept for grouping and for slicing the evaluation.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipeline.agreement import dataset_agreement
from pipeline.annotations import AnnotationRecord, latest_adjudications, latest_judgements, read_exports
from pipeline.config import DatasetParams, load_params
from pipeline.errors import InputError
from pipeline.fsutil import atomic_dir, write_json
from pipeline.schema import LabelSchema, load_label_schema
from pipeline.splits import assign_splits, split_groups

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


UNKNOWN_OUTLET_TYPE = "collected"  # documents with no outlet metadata (the seeds): each its own outlet


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    doc_id: str
    sources: tuple[str, ...]
    cluster_id: str
    date: str
    outlet: str
    outlet_type: str
    country: str
    year: int
    event: str
    genre: str
    frames: tuple[str, ...]
    stance: str | None  # None for an off-topic passage
    n_annotators: int
    adjudicated: bool
    off_topic: bool = False


def passage_metadata(passage: dict) -> dict:
    """Outlet, outlet type, country, year, event and genre of a passage (defaults where a document has none)."""
    meta = passage.get("meta") or {}
    date = passage.get("date") or ""
    year = meta.get("year")
    return {"outlet": str(meta.get("outlet") or passage["doc_id"]),
            "outlet_type": str(meta.get("outlet_type") or UNKNOWN_OUTLET_TYPE),
            "country": str(meta.get("country") or ""),
            "year": int(year) if isinstance(year, int) else int(date[:4]) if date[:4].isdigit() else 0,
            "event": str(meta.get("event") or ""), "genre": str(meta.get("genre") or "")}


def read_passages(path: str | Path) -> dict[str, dict]:
    """Passages by id, from the ingest stage's JSONL."""
    path = Path(path)
    passages = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    record = json.loads(line)
                    passages[record["id"]] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise InputError(f"{path}:{lineno}: malformed passage record (re-run `dvc repro ingest`)") from None
    except FileNotFoundError:
        raise InputError(f"{path}: passages file not found (run the ingest stage first)") from None
    return passages


def resolve(records: list[AnnotationRecord], passages: dict[str, dict], schema: LabelSchema) -> tuple[list[Example], dict]:
    """Majority vote per passage and label, or the adjudicator's decision where there is one;
    returns examples and a report of what was left out (and what an adjudicator decided)."""
    by_location = {(s["doc_id"], s["paragraph_index"]): pid for pid, p in passages.items() for s in p["sources"]}
    report: dict[str, list] = {"stale": [], "off_topic": [], "ties": [], "cancelled": [], "adjudicated": []}
    usable = []
    for record in records:
        if record.passage_id not in passages:
            moved = by_location.get((record.doc_id, record.paragraph_index))
            if moved is not None:
                report["stale"].append({"file": record.file, "task_id": record.task_id, "passage_id": record.passage_id,
                                        "now": moved, "reason": "passage text changed since it was annotated"})
                continue
            raise InputError(f"{record.file}: task {record.task_id}: annotation for unknown passage {record.passage_id!r} "
                             "(not in the ingested passages)")
        if record.cancelled:
            report["cancelled"].append({"file": record.file, "task_id": record.task_id, "annotator": record.annotator})
            continue
        usable.append(record)
    adjudications = latest_adjudications(usable)
    votes: dict[str, list[AnnotationRecord]] = defaultdict(list)
    for (pid, _), record in sorted(latest_judgements(usable).items()):
        votes[pid].append(record)

    examples = []
    for pid in passages:  # passage order: deterministic
        judgements = votes.get(pid, [])
        decision = adjudications.get(pid)
        if not judgements and decision is None:
            continue
        if decision is not None:
            report["adjudicated"].append({"passage_id": pid, "adjudicator": decision.annotator,
                                          "annotators": len(judgements)})
            judgements_used = [decision]
        else:
            judgements_used = judgements
        n = len(judgements_used)
        off = sum(j.off_topic for j in judgements_used)
        passage = passages[pid]
        common = dict(id=pid, text=passage["text"], doc_id=passage["doc_id"],
                      sources=tuple(sorted({s["doc_id"] for s in passage["sources"]})),
                      cluster_id=passage["cluster_id"], date=passage.get("date") or "", **passage_metadata(passage),
                      n_annotators=len(judgements), adjudicated=decision is not None)
        if 2 * off > n or (decision is not None and decision.off_topic):
            # Kept: a distractor teaches the frame heads what no frame looks like; it has no stance.
            report["off_topic"].append({"passage_id": pid, "votes": off, "annotators": n})
            examples.append(Example(**common, frames=(), stance=None, off_topic=True))
            continue
        if 2 * off == n:
            report["ties"].append({"passage_id": pid, "labels": ["off_topic"], "annotators": n})
            continue
        on_topic = [j for j in judgements_used if not j.off_topic]
        frames, tied = [], []
        for frame in schema.frame_names:
            yes = sum(frame in j.frames for j in on_topic)
            if 2 * yes == len(on_topic):
                tied.append(frame)
            elif 2 * yes > len(on_topic):
                frames.append(frame)
        stance_votes = Counter(j.stance for j in on_topic).most_common()
        if len(stance_votes) > 1 and stance_votes[0][1] == stance_votes[1][1]:
            tied.append("stance")
        if tied:
            report["ties"].append({"passage_id": pid, "labels": tied, "annotators": n})
            continue
        examples.append(Example(**common, frames=tuple(frames), stance=stance_votes[0][0]))
    return examples, report


def features(frame_names, stance_names):
    """The DatasetDict's columns and types: the one definition the train stage and the tests read."""
    from datasets import ClassLabel, Features, Sequence, Value

    return Features({
        "id": Value("string"), "text": Value("string"), "doc_id": Value("string"),
        "sources": Sequence(Value("string")), "group": Value("string"), "date": Value("string"),
        "outlet": Value("string"), "outlet_type": Value("string"), "country": Value("string"),
        "year": Value("int32"), "event": Value("string"), "genre": Value("string"),
        "frames": Sequence(ClassLabel(names=list(frame_names))),
        "stance": ClassLabel(names=list(stance_names)),
        "fold": Value("int32"), "n_annotators": Value("int32"), "adjudicated": Value("bool"),
        "off_topic": Value("bool"),
    })


def run(passages: str | Path, annotations: str | Path, labels: str | Path, dataset: str | Path,
        parquet: str | Path, stats: str | Path, report: str | Path, params: DatasetParams, seed: int) -> dict:
    """Build and save the DatasetDict; write split statistics (metrics) and the exclusion report."""
    from datasets import Dataset, DatasetDict

    schema = load_label_schema(labels)
    passage_map = read_passages(passages)
    records = read_exports(annotations, schema, params.adjudicators)
    examples, problems = resolve(records, passage_map, schema)
    if len(examples) < 3:
        raise InputError(f"{annotations}: only {len(examples)} usable annotated passages; need at least 3 to split")
    groups = split_groups(examples, params.group_by)
    split_of, folds = assign_splits(groups, params.test_fraction, params.validation_fraction, params.cv_folds, seed)

    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for example, group, split, fold in zip(examples, groups, split_of, folds):
        row = {k: getattr(example, k) for k in ("id", "text", "doc_id", "date", "outlet", "outlet_type", "country",
                                                "year", "event", "genre", "n_annotators", "adjudicated", "off_topic")}
        row["stance"] = example.stance if example.stance is not None else -1  # ClassLabel's "no label"
        rows[split].append({**row, "sources": list(example.sources), "group": group, "frames": list(example.frames),
                            "fold": int(fold)})
    feats = features(schema.frame_names, schema.stance_names)
    dsd = DatasetDict({s: Dataset.from_list(rows[s], features=feats) for s in SPLITS})
    with atomic_dir(dataset) as tmp:
        dsd.save_to_disk(str(tmp))
    with atomic_dir(parquet) as tmp:
        for s in SPLITS:
            dsd[s].to_parquet(str(Path(tmp) / f"{s}.parquet"))

    summary: dict = {"passages_annotated": len({r.passage_id for r in records if not r.cancelled}),
                     "examples": len(examples), "group_by": params.group_by}
    for s in SPLITS:
        summary[s] = {
            "passages": len(rows[s]),
            "groups": len({r["group"] for r in rows[s]}),
            "outlets": len({r["outlet"] for r in rows[s]}),
            "frames": {f: sum(f in r["frames"] for r in rows[s]) for f in schema.frame_names},
            "no_frame": sum(not r["frames"] for r in rows[s]),
            "off_topic": sum(r["off_topic"] for r in rows[s]),
            "stance": {st: sum(r["stance"] == st for r in rows[s]) for st in schema.stance_names},
        }
    summary["cv_folds"] = {str(k): int((folds == k).sum()) for k in sorted(set(folds.tolist())) if k >= 0}
    summary["excluded"] = {k: len(v) for k, v in problems.items()}
    summary["agreement"] = dataset_agreement(latest_judgements(records), schema)
    write_json(stats, summary)
    write_json(report, problems)
    for kind, items in problems.items():
        if items and kind not in ("cancelled", "adjudicated", "off_topic"):
            log.warning("dataset: %d passage(s) left out (%s); see %s", len(items), kind, report)
    log.info("dataset: %s", ", ".join(f"{s}={len(rows[s])}" for s in SPLITS))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing dataset", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--passages", default="data/passages.jsonl")
    parser.add_argument("--annotations", help="overrides dataset.annotations_dir")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--dataset", default="data/dataset")
    parser.add_argument("--parquet", default="data/dataset_parquet")
    parser.add_argument("--stats", default="metrics/dataset.json")
    parser.add_argument("--report", default="data/dataset_report.json")
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()  # per-shard bars are noise for a dataset this size
    params = load_params(args.params)
    run(args.passages, args.annotations or params.dataset.annotations_dir, args.labels, args.dataset,
        args.parquet, args.stats, args.report, params.dataset, params.seed)
