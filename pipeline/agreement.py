"""Inter-annotator agreement: Krippendorff's alpha (nominal), observed agreement, Cohen's kappa,
the per-label report of `framing labelstudio pull` (metrics/agreement.json, labels/AGREEMENT.md)
and the summary in the dataset stage's metrics.

Every function takes *judgements*: each annotator's latest, non-cancelled judgement of a passage,
as ``pipeline.annotations.latest_judgements`` picks them, so all agreement figures count the same
judgements as the training labels do.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import combinations, permutations
from typing import Any, Hashable, Mapping, Sequence

from pipeline.annotations import AnnotationRecord
from pipeline.schema import LabelSchema

def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data.

    ``units`` holds, per item, the values the annotators gave (missing ones left
    out). Items with fewer than two values are not pairable and are ignored.
    Returns None when alpha is undefined (fewer than two pairable values, or a
    single value used throughout, so expected disagreement is zero).
    """
    coincidences: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for a, b in permutations(values, 2):
            coincidences[(a, b)] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (a, _), weight in coincidences.items():
        totals[a] += weight
    n = sum(totals.values())
    if n < 2:
        return None
    observed = sum(w for (a, b), w in coincidences.items() if a != b) / n
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n * (n - 1))
    if expected == 0:
        return None
    return 1.0 - observed / expected


def observed_agreement(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of multiply-annotated items on which every annotator gave the same value."""
    pairable = [values for values in units if len(values) >= 2]
    if not pairable:
        return None
    return sum(len(set(values)) == 1 for values in pairable) / len(pairable)


def cohen_kappa(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters' values on the same items; None when undefined."""
    n = len(pairs)
    if n < 2:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first: dict = defaultdict(int)
    second: dict = defaultdict(int)
    for a, b in pairs:
        first[a] += 1
        second[b] += 1
    expected = sum(first[k] * second.get(k, 0) for k in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def label_values(record: AnnotationRecord, schema: LabelSchema) -> dict[str, Any]:
    """A judgement as one value per label; frames and stance are missing on off-topic judgements."""
    values: dict[str, Any] = {"off_topic": record.off_topic}
    if not record.off_topic:
        for frame in schema.frame_names:
            values[f"frame_{frame}"] = frame in record.frames
        values["stance"] = record.stance
    return values


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def agreement_report(judgements: Mapping[tuple[str, str], AnnotationRecord], schema: LabelSchema) -> dict:
    """Per-label agreement over passages with two or more annotators: Krippendorff's alpha, observed
    agreement, Cohen's kappa (the kappa of the one annotator pair, or the mean over pairs when there
    are more), and the disagreements. ``judgements``: (passage id, annotator) → latest judgement."""
    by_passage: dict[str, dict[str, dict]] = defaultdict(dict)
    for (pid, who), r in sorted(judgements.items()):
        by_passage[pid][who] = label_values(r, schema)
    multi = {pid: v for pid, v in by_passage.items() if len(v) >= 2}
    labels = ["off_topic", *(f"frame_{f}" for f in schema.frame_names), "stance"]
    annotators = sorted({who for v in multi.values() for who in v})
    report: dict = {"passages_with_2plus_annotators": len(multi), "annotators": len(annotators), "labels": {},
                    "pairs": [], "disagreements": []}
    pair_kappas: dict[str, list[float]] = defaultdict(list)
    for a, b in combinations(annotators, 2):
        shared = [pid for pid, v in multi.items() if a in v and b in v]
        if not shared:
            continue
        entry = {"annotators": [a, b], "passages": len(shared), "cohen_kappa": {}}
        for label in labels:
            pairs = [(multi[p][a][label], multi[p][b][label]) for p in shared
                     if label in multi[p][a] and label in multi[p][b]]
            kappa = cohen_kappa(pairs)
            entry["cohen_kappa"][label] = _r(kappa)
            if kappa is not None:
                pair_kappas[label].append(kappa)
        report["pairs"].append(entry)
    for label in labels:
        units = [[v[label] for v in judgements.values() if label in v] for judgements in multi.values()]
        kappas = pair_kappas.get(label, [])
        report["labels"][label] = {
            "units": sum(len(u) >= 2 for u in units),
            "observed": _r(observed_agreement(units)),
            "krippendorff_alpha": _r(krippendorff_alpha_nominal(units)),
            "cohen_kappa": _r(sum(kappas) / len(kappas)) if kappas else None,
        }
    for pid, judgements in sorted(multi.items()):
        for label in labels:
            values = {who: v[label] for who, v in judgements.items() if label in v}
            if len(values) >= 2 and len({json.dumps(x) for x in values.values()}) > 1:
                report["disagreements"].append({"passage_id": pid, "label": label, "values": values})
    return report


def agreement_markdown(report: Mapping, passages: Mapping[str, Mapping] | None = None) -> str:
    """The agreement report for people (labels/AGREEMENT.md)."""
    def fmt(x):
        return "–" if x is None else f"{x:.3f}"

    out = ["<!-- Written by `framing labelstudio pull`; do not edit. -->", "# Inter-annotator agreement", "",
           f"Passages with two or more annotators: **{report['passages_with_2plus_annotators']}** "
           f"({report['annotators']} annotators). Each annotator's latest, non-cancelled judgement counts; "
           "frames and stance are compared among on-topic judgements only.", ""]
    if not report["passages_with_2plus_annotators"]:
        return "\n".join(out + ["No passage has two annotators yet.", ""])
    out += ["| label | units | observed | Krippendorff's α | Cohen's κ |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, s in report["labels"].items():
        out.append(f"| {label} | {s['units']} | {fmt(s['observed'])} | {fmt(s['krippendorff_alpha'])} | "
                   f"{fmt(s['cohen_kappa'])} |")
    out += ["", "Cohen's κ is the kappa of the one annotator pair, or the mean over pairs when there are more; "
            "– means undefined (too few items, or one value used throughout).", ""]
    if report["pairs"]:
        out += ["## Annotator pairs", ""]
        for pair in report["pairs"]:
            kappas = ", ".join(f"{k} {fmt(v)}" for k, v in pair["cohen_kappa"].items())
            out.append(f"- {pair['annotators'][0]} × {pair['annotators'][1]} ({pair['passages']} passages): {kappas}")
        out.append("")
    out += [f"## Disagreements ({len(report['disagreements'])})", ""]
    for d in report["disagreements"]:
        values = "; ".join(f"{who}: {json.dumps(v)}" for who, v in d["values"].items())
        text = ((passages or {}).get(d["passage_id"]) or {}).get("text", "")
        snippet = f" — “{text[:100]}{'…' if len(text) > 100 else ''}”" if text else ""
        out.append(f"- `{d['passage_id']}` **{d['label']}**: {values}{snippet}")
    return "\n".join(out) + "\n"


def dataset_agreement(judgements: Mapping[tuple[str, str], AnnotationRecord], schema: LabelSchema) -> dict:
    """Per-label observed agreement and alpha over passages with two or more annotators (metrics/dataset.json)."""
    by_passage: dict[str, list[AnnotationRecord]] = defaultdict(list)
    for (pid, _), r in sorted(judgements.items()):
        by_passage[pid].append(r)
    multi = [js for js in by_passage.values() if len(js) >= 2]
    stats: dict = {"passages_with_2plus_annotators": len(multi)}
    if not multi:
        return stats
    for frame in schema.frame_names:
        units = [[frame in j.frames for j in js if not j.off_topic] for js in multi]
        stats[f"frame_{frame}"] = {"observed": observed_agreement(units), "krippendorff_alpha": krippendorff_alpha_nominal(units)}
    units = [[j.stance for j in js if not j.off_topic] for js in multi]
    stats["stance"] = {"observed": observed_agreement(units), "krippendorff_alpha": krippendorff_alpha_nominal(units)}
    return stats
