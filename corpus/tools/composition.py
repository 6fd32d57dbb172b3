"""Composition tables of the corpus for corpus/DATASHEET.md: documents and passages per outlet type,
year band and event; resolved labels per outlet type; writers' devices. Reads the ingest and dataset
stages' outputs (run `dvc repro dataset` first) and prints Markdown.

    python corpus/tools/composition.py
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import datasets

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    passages = [json.loads(l) for l in (ROOT / "data/passages.jsonl").read_text(encoding="utf-8").splitlines()]
    corpus = [p for p in passages if p["meta"].get("outlet_type")]
    dd = datasets.load_from_disk(str(ROOT / "data/dataset"))
    frames = dd["train"].features["frames"].feature.names
    stances = dd["train"].features["stance"].names
    rows = [r for s in ("train", "validation", "test") for r in dd[s]]
    labelled = {r["id"]: r for r in rows}

    by_type = defaultdict(lambda: {"docs": set(), "outlets": set(), "passages": 0})
    for p in corpus:
        t = by_type[p["meta"]["outlet_type"]]
        t["docs"].add(p["doc_id"])
        t["outlets"].add(p["meta"]["outlet"])
        t["passages"] += 1
    print("| outlet type | outlets | documents | passages | off-topic | isolated pariah | transactional | "
          "strategic partnership | critical | neutral | supportive |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    totals = Counter()
    for typ in sorted(by_type):
        t = by_type[typ]
        rs = [labelled[p["id"]] for p in corpus if p["meta"]["outlet_type"] == typ and p["id"] in labelled]
        c = Counter()
        for r in rs:
            c["off"] += r["off_topic"]
            for f in r["frames"]:
                c[frames[f]] += 1
            if r["stance"] >= 0:
                c[stances[r["stance"]]] += 1
        cells = [len(t["outlets"]), len(t["docs"]), t["passages"], c["off"], *(c[f] for f in frames), *(c[s] for s in stances)]
        totals.update(dict(zip(range(len(cells)), cells)))
        print(f"| {typ} | " + " | ".join(map(str, cells)) + " |")
    print("| **all** | " + " | ".join(str(totals[i]) for i in range(10)) + " |")

    print()
    bands = Counter()
    events = Counter()
    for p in corpus:
        y = p["meta"]["year"]
        bands["2000–2009" if y < 2010 else "2010–2019" if y < 2020 else "2020–2021" if y < 2022 else str(y)] += 1
        events[p["meta"]["event"]] += 1
    print("| years | passages |\n|---|---|")
    for band in sorted(bands):
        print(f"| {band} | {bands[band]} |")
    print()
    print("| event | passages |\n|---|---|")
    for event, n in sorted(events.items(), key=lambda kv: -kv[1]):
        print(f"| `{event}` | {n} |")

    devices = Counter()
    for path in sorted((ROOT / "corpus/writer_notes").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                devices.update(json.loads(line).get("devices", []))
    print()
    print("| writer's device (intent, not a label) | paragraphs |\n|---|---|")
    for device, n in devices.most_common():
        print(f"| `{device}` | {n} |")
    print()
    both = sum(len(r["frames"]) >= 2 for r in rows if not r["off_topic"])
    none = sum(len(r["frames"]) == 0 for r in rows if not r["off_topic"])
    print(f"Resolved labels: {len(rows)} passages ({sum(r['off_topic'] for r in rows)} off-topic); of the on-topic, "
          f"{none} with no frame, {both} with two or more; {sum(r['adjudicated'] for r in rows)} decided by an adjudicator.")


if __name__ == "__main__":
    main()
