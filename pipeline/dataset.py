"""Stage `dataset`: passages + Label Studio annotations → Hugging Face DatasetDict.

Joins passages and annotations by passage id, resolves several annotators by
majority vote per label, and splits into train / validation / test so that no
split group (a near-duplicate cluster, or a whole document) crosses splits. The
train and validation rows also get a grouped cross-validation fold, because
with this little data models are selected on folds, not on a handful of
validation passages.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.agreement import dataset_agreement
from pipeline.annotations import AnnotationRecord, latest_judgements, read_exports
from pipeline.config import DatasetParams, load_params
from pipeline.errors import InputError
from pipeline.fsutil import atomic_dir, write_json
from pipeline.schema import LabelSchema, load_label_schema
from pipeline.unionfind import UnionFind

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    doc_id: str
    sources: tuple[str, ...]
    cluster_id: str
    date: str
    frames: tuple[str, ...]
    stance: str
    n_annotators: int


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
    """Majority vote per passage and label; returns examples and a report of what was left out."""
    by_location = {(s["doc_id"], s["paragraph_index"]): pid for pid, p in passages.items() for s in p["sources"]}
    report: dict[str, list] = {"stale": [], "off_topic": [], "ties": [], "cancelled": []}
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
    latest = latest_judgements(usable)

    votes: dict[str, list[AnnotationRecord]] = defaultdict(list)
    for (pid, _), record in sorted(latest.items()):
        votes[pid].append(record)

    examples = []
    for pid in passages:  # passage order: deterministic
        judgements = votes.get(pid)
        if not judgements:
            continue
        n = len(judgements)
        off = sum(j.off_topic for j in judgements)
        if 2 * off >= n:
            report["off_topic"].append({"passage_id": pid, "votes": off, "annotators": n})
            continue
        on_topic = [j for j in judgements if not j.off_topic]
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
        passage = passages[pid]
        examples.append(Example(
            id=pid, text=passage["text"], doc_id=passage["doc_id"],
            sources=tuple(sorted({s["doc_id"] for s in passage["sources"]})),
            cluster_id=passage["cluster_id"], date=passage.get("date") or "",
            frames=tuple(frames), stance=stance_votes[0][0], n_annotators=n,
        ))
    return examples, report


def split_groups(examples: list[Example], group_by: str) -> list[str]:
    """Group key per example: near-duplicate cluster, or connected documents.

    A passage shared by several documents links them, so with ``document`` they
    form one group; with ``cluster`` a shared passage is one row anyway.
    """
    if group_by == "cluster":
        return [e.cluster_id for e in examples]
    docs: UnionFind[str] = UnionFind()
    clusters: dict[str, str] = {}
    for e in examples:
        for doc in (*e.sources, clusters.setdefault(e.cluster_id, e.sources[0])):
            docs.union(e.sources[0], doc)
    return [docs.find(e.sources[0]) for e in examples]


def _grouped_fold(strata: list[str], groups: list[str], n_splits: int, seed: int) -> np.ndarray:
    """Fold index per row from StratifiedGroupKFold (stratified as far as the groups allow)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups))
    fold = np.zeros(len(groups), dtype=np.int32)
    if n_groups < 2:
        return fold
    n_splits = max(2, min(n_splits, n_groups))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "least populated class" on tiny data
            for k, (_, held) in enumerate(splitter.split(np.zeros(len(groups)), strata, groups)):
                fold[held] = k
    except ValueError:
        # Every class is smaller than n_splits: stratification is impossible, so
        # deal shuffled groups to the currently smallest fold instead.
        rng = np.random.default_rng(seed)
        names = sorted(set(groups))
        sizes = np.zeros(n_splits, dtype=int)
        where = {}
        for g in rng.permutation(names):
            where[g] = int(np.argmin(sizes))
            sizes[where[g]] += groups.count(g)
        fold[:] = [where[g] for g in groups]
    return fold


def assign_splits(examples: list[Example], groups: list[str], params: DatasetParams, seed: int) -> tuple[list[str], np.ndarray]:
    """Split name and CV fold (-1 for test) per example."""
    strata = [e.stance for e in examples]
    n = len(examples)
    split = np.array(["train"] * n, dtype=object)
    test_fold = _grouped_fold(strata, groups, round(1 / params.test_fraction), seed)
    split[test_fold == 0] = "test"
    rest = np.flatnonzero(split != "test")
    if params.validation_fraction > 0 and len(rest):
        n_val = max(2, round((1 - params.test_fraction) / params.validation_fraction))
        val_fold = _grouped_fold([strata[i] for i in rest], [groups[i] for i in rest], n_val, seed + 1)
        split[rest[val_fold == 0]] = "validation"
    folds = np.full(n, -1, dtype=np.int32)
    folds[rest] = _grouped_fold([strata[i] for i in rest], [groups[i] for i in rest], params.cv_folds, seed + 2)
    return list(split), folds


def features(frame_names, stance_names):
    """The DatasetDict's columns and types: the one definition the train stage and the tests read."""
    from datasets import ClassLabel, Features, Sequence, Value

    return Features({
        "id": Value("string"), "text": Value("string"), "doc_id": Value("string"),
        "sources": Sequence(Value("string")), "group": Value("string"), "date": Value("string"),
        "frames": Sequence(ClassLabel(names=list(frame_names))),
        "stance": ClassLabel(names=list(stance_names)),
        "fold": Value("int32"), "n_annotators": Value("int32"),
    })


def run(passages: str | Path, annotations: str | Path, labels: str | Path, dataset: str | Path,
        parquet: str | Path, stats: str | Path, report: str | Path, params: DatasetParams, seed: int) -> dict:
    """Build and save the DatasetDict; write split statistics (metrics) and the exclusion report."""
    from datasets import Dataset, DatasetDict

    schema = load_label_schema(labels)
    passage_map = read_passages(passages)
    records = read_exports(annotations, schema)
    examples, problems = resolve(records, passage_map, schema)
    if len(examples) < 3:
        raise InputError(f"{annotations}: only {len(examples)} usable annotated passages; need at least 3 to split")
    groups = split_groups(examples, params.group_by)
    split_of, folds = assign_splits(examples, groups, params, seed)

    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for example, group, split, fold in zip(examples, groups, split_of, folds):
        rows[split].append({
            "id": example.id, "text": example.text, "doc_id": example.doc_id, "sources": list(example.sources),
            "group": group, "date": example.date, "frames": list(example.frames), "stance": example.stance,
            "fold": int(fold), "n_annotators": example.n_annotators,
        })
    feats = features(schema.frame_names, schema.stance_names)
    dsd = DatasetDict({s: Dataset.from_list(rows[s], features=feats) for s in SPLITS})
    with atomic_dir(dataset) as tmp:
        dsd.save_to_disk(str(tmp))
    with atomic_dir(parquet) as tmp:
        for s in SPLITS:
            dsd[s].to_parquet(str(Path(tmp) / f"{s}.parquet"))

    summary: dict = {"passages_annotated": len({r.passage_id for r in records}), "examples": len(examples)}
    for s in SPLITS:
        summary[s] = {
            "passages": len(rows[s]),
            "groups": len({r["group"] for r in rows[s]}),
            "frames": {f: sum(f in r["frames"] for r in rows[s]) for f in schema.frame_names},
            "no_frame": sum(not r["frames"] for r in rows[s]),
            "stance": {st: sum(r["stance"] == st for r in rows[s]) for st in schema.stance_names},
        }
    summary["cv_folds"] = {str(k): int((folds == k).sum()) for k in sorted(set(folds.tolist())) if k >= 0}
    summary["excluded"] = {k: len(v) for k, v in problems.items()}
    summary["agreement"] = dataset_agreement(latest_judgements(records), schema)
    write_json(stats, summary)
    write_json(report, problems)
    for kind, items in problems.items():
        if items and kind != "cancelled":
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
