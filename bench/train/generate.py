"""Deterministic synthetic corpus + Label Studio export for the training-pipeline benchmark.

``generate(n, out_dir, seed)`` writes

    out_dir/docs/docs_0000.jsonl ...   documents ({"id", "date", "source", "text"}), paragraphs
                                        separated by blank lines, ~10 paragraphs per document
    out_dir/annotations/export.json     one Label Studio JSON export: one task per unique passage,
                                        one (non-cancelled) annotation per task
    out_dir/manifest.json               counts, the generator's settings and the cue/label rates

so that the ingest stage yields exactly ``n`` passages and the dataset stage turns
every one of them into an example.

Text comes from the seed vocabulary: the words of the cleaned seed documents
(``seeds/``, cleaned by the ingest rules), drawn by their seed frequency, with
the label cues of ``configs/labels.yaml`` removed from the filler so that the
cues the generator inserts are what carries the labels. Each passage gets a
random set of frames and one stance; for each one, 1–2 cues that belong to that
label only are inserted into its sentences. The annotation then records those
labels with some noise (``label_noise``: a frame flipped, a stance replaced),
so the labels are learnable but not trivially so.

Realistic structure, so ingest's duplicate handling is exercised:
``near_dup_rate`` of the passages are an earlier passage with one word changed
(syndicated rewrites: MinHash clusters them, and the dataset keeps each cluster
in one split), and ``exact_dup_rate`` extra paragraphs repeat an earlier
passage verbatim in a later document (ingest merges them; they add sources, not
passages).

Passage ids, doc ids and paragraph indices are computed exactly as ingest
computes them (``passage_id(normalize(text))``, ``<file stem>:<record id>``,
index in the document's paragraph sequence); every paragraph is checked
against the ingest cleaning rules before it is used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from pipeline.annotations import choices_results
from pipeline.config import IngestParams, load_params
from pipeline.schema import LabelSchema, load_label_schema
from pipeline.ingest import Cleaner, Document, RawParagraph, read_documents
from pipeline.textnorm import normalize, passage_id

ROOT = Path(__file__).resolve().parents[2]
WORD = re.compile(r"[A-Za-z][A-Za-z’'-]*[A-Za-z]|[A-Za-z]")

# Label rates: frames are independent (a passage may carry none or several); stance is one of three.
FRAME_RATE = 0.35
STANCE_WEIGHTS = {"critical": 0.35, "neutral": 0.40, "supportive": 0.25}
ANNOTATORS = 5


def seed_vocabulary(seed_dir: Path, params: IngestParams, schema: LabelSchema) -> tuple[list[str], list[int]]:
    """(words, counts) of the cleaned seed passages, minus every word that is (part of) a label cue."""
    cleaner = Cleaner(params)
    counts: Counter = Counter()
    stats: Counter = Counter()
    for doc in read_documents([seed_dir], params.txt_paragraphs):
        for _, _, text in cleaner.clean(doc, stats):
            counts.update(WORD.findall(text))
    # Single-word cues and the long words of multi-word cues ("strategic", "exchange"); short function words
    # of multi-word cues ("in", "with", "of") stay, or the filler would read nothing like text.
    cue_words = {w for label in (*schema.frames, *schema.stance) for cue in label.cues
                 for w in cue.lower().replace("-", " ").split() if " " not in cue.strip() or len(w) > 4}
    words = sorted(w for w in counts
                   if w.lower() not in cue_words and not any(c in w.lower() for c in cue_words if len(c) > 4))
    return words, [counts[w] for w in words]


def exclusive_cues(schema: LabelSchema) -> dict[str, list[str]]:
    """Cues per label key, keeping only cues that belong to no other label (e.g. 'rogue' is in two)."""
    owners: Counter = Counter(" ".join(c.lower().split()) for label in (*schema.frames, *schema.stance)
                              for c in set(" ".join(x.lower().split()) for x in label.cues))
    return {label.key: sorted({" ".join(c.lower().split()) for c in label.cues} - {c for c, k in owners.items() if k > 1})
            for label in (*schema.frames, *schema.stance)}


class _Rules:
    """Whether a single paragraph survives ingest's cleaning unchanged."""

    def __init__(self, params: IngestParams):
        self.cleaner = Cleaner(params)

    def keeps(self, text: str) -> bool:
        if normalize(text) != text:
            return False
        doc = Document("check", "check", [RawParagraph(text, 0, len(text), 1)], date="2000-01-01")
        return [t for _, _, t in self.cleaner.clean(doc, Counter())] == [text]


class PassageMaker:
    def __init__(self, rng: random.Random, words: list[str], weights: list[int], cues: dict[str, list[str]],
                 schema: LabelSchema, rules: _Rules):
        self.rng, self.words, self.rules = rng, words, rules
        self.word_set = set(words)
        total = 0
        self.cum = []
        for w in weights:  # cumulative weights once: rng.choices(cum_weights=...) is then O(log V) per word
            total += w
            self.cum.append(total)
        self.cues = cues
        self.frames = schema.frame_names
        self.stances = schema.stance_names

    def filler(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)

    def make(self) -> tuple[str, list[str], str]:
        """(text, frames whose cues it carries, stance whose cues it carries)."""
        rng = self.rng
        frames = [f for f in self.frames if rng.random() < FRAME_RATE]
        stance = rng.choices(self.stances, weights=[STANCE_WEIGHTS.get(s, 1.0) for s in self.stances])[0]
        inserts = [c for key in (*frames, stance) for c in rng.sample(self.cues[key], k=min(len(self.cues[key]), rng.randint(1, 2)))]
        n_sent = rng.randint(2, 4)
        sentences = [self.filler(rng.randint(8, 16)) for _ in range(n_sent)]
        for cue in inserts:
            s = sentences[rng.randrange(n_sent)]
            s.insert(rng.randint(1, len(s)), cue)
        text = " ".join(" ".join([s[0][:1].upper() + s[0][1:], *s[1:]]) + "." for s in sentences)
        return text, frames, stance

    def variant(self, text: str) -> str:
        """Near-duplicate: one filler word replaced (estimated Jaccard of 3-word shingles ≈ 0.85)."""
        toks = text.split(" ")
        i = self.rng.randrange(1, len(toks) - 1)
        if toks[i] in self.word_set:  # a filler word (never a cue, never the sentence end)
            toks[i] = self.filler(1)[0]
        return " ".join(toks)


def _noisy(rng: random.Random, frames: list[str], stance: str, names: list[str], stances: list[str],
           noise: float) -> tuple[list[str], str]:
    out = [f for f in names if (f in frames) != (rng.random() < noise)]
    if rng.random() < noise:
        stance = rng.choice([s for s in stances if s != stance])
    return out, stance


def _task(k: int, p: dict, schema: LabelSchema, frames: list[str], stance: str) -> dict:
    """A task exactly as Label Studio's JSON export writes it (same fields as labels/annotations/seed_annotations.json)."""
    annotator = 1 + (k - 1) % ANNOTATORS
    when = f"2026-11-22T05:{(k // 60) % 60:02d}:{k % 60:02d}.000000Z"
    return {
        "id": k,
        "annotations": [{
            "id": k, "completed_by": annotator, "result": choices_results(schema, frames, stance),
            "was_cancelled": False, "ground_truth": False, "created_at": when, "updated_at": when,
            "draft_created_at": None, "lead_time": 30.0, "prediction": {}, "result_count": 0,
            "unique_id": f"bench-{k}", "import_id": None, "last_action": None, "bulk_created": False,
            "task": k, "project": 1, "updated_by": annotator, "parent_prediction": None,
            "parent_annotation": None, "last_created_by": None,
        }],
        "file_upload": None, "drafts": [], "predictions": [],
        "data": {"text": p["text"], "passage_id": p["id"], "doc_id": p["doc_id"],
                 "paragraph_index": p["paragraph_index"], "date": p["date"], "sources": p["doc_id"]},
        "meta": {}, "created_at": when, "updated_at": when, "inner_id": k, "total_annotations": 1,
        "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
        "last_comment_updated_at": None, "project": 1, "updated_by": None, "comment_authors": [],
    }


def generate(n: int, out_dir: str | Path, seed: int = 0, *, paragraphs_per_doc: int = 10, docs_per_file: int = 500,
             near_dup_rate: float = 0.02, exact_dup_rate: float = 0.01, label_noise: float = 0.08,
             params_path: str | Path = ROOT / "configs/params.yaml",
             labels_path: str | Path = ROOT / "configs/labels.yaml", annotations: bool = True) -> dict:
    """Write ``n`` unique passages as documents, and (unless ``annotations`` is false: documents only,
    for the ingest and scoring benchmarks) their annotations; returns the manifest."""
    if n < 3:
        raise ValueError("n must be at least 3 (the dataset stage needs 3 examples)")
    out_dir = Path(out_dir)
    params = load_params(params_path)
    schema = load_label_schema(labels_path)
    seed_dir = Path(params.ingest.input_dirs[0])
    seed_dir = seed_dir if seed_dir.is_absolute() else ROOT / seed_dir
    words, weights = seed_vocabulary(seed_dir, params.ingest, schema)
    cues = exclusive_cues(schema)
    rng = random.Random(seed)
    maker = PassageMaker(rng, words, weights, cues, schema, _Rules(params.ingest))

    for sub in ("docs", "annotations"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / sub).mkdir(parents=True)

    seen: set[str] = set()
    made: list[tuple[str, list[str], str]] = []  # unique passages: text, frames, stance (as inserted)
    n_docs = -(-n // paragraphs_per_doc)
    start = date(2023, 1, 1)
    first: dict[str, dict] = {}  # passage id → first location (what ingest reports)
    labels: dict[str, tuple[list[str], str]] = {}
    counts = Counter()
    doc_file = None
    for d in range(n_docs):
        if d % docs_per_file == 0:
            if doc_file:
                doc_file.close()
            path = out_dir / "docs" / f"docs_{d // docs_per_file:04d}.jsonl"
            doc_file = path.open("w", encoding="utf-8")
        stem = path.stem
        doc_key = f"d{d:07d}"
        day = (start + timedelta(days=rng.randrange(730))).isoformat()
        paragraphs: list[str] = []
        for _ in range(min(paragraphs_per_doc, n - len(made))):
            if made and rng.random() < exact_dup_rate:  # verbatim repeat of an earlier passage: extra paragraph
                paragraphs.append(rng.choice(made[-5000:])[0])
                counts["exact_duplicate_paragraphs"] += 1
            while True:
                if made and rng.random() < near_dup_rate:
                    src_text, frames, stance = rng.choice(made[-5000:])
                    text = maker.variant(src_text)
                    kind = "near_duplicate_passages"
                else:
                    text, frames, stance = maker.make()
                    kind = "fresh_passages"
                pid = passage_id(text)
                if pid not in seen and maker.rules.keeps(text):
                    break
                counts["rejected_retries"] += 1
            seen.add(pid)
            counts[kind] += 1
            made.append((text, frames, stance))
            if annotations:
                first[pid] = {"id": pid, "text": text, "doc_id": f"{stem}:{doc_key}",
                              "paragraph_index": len(paragraphs), "date": day}
                labels[pid] = (frames, stance)
            paragraphs.append(text)
        doc_file.write(json.dumps({"id": doc_key, "date": day, "source": "bench-synthetic",
                                   "text": "\n\n".join(paragraphs)}, ensure_ascii=False) + "\n")
    doc_file.close()

    # One Label Studio export, streamed (a 100k-task list would otherwise sit in memory as dicts).
    label_counts: Counter = Counter()
    export = out_dir / "annotations" / "export.json"
    with (export.open("w", encoding="utf-8") if annotations else contextlib.nullcontext()) as fh:
        for k, (pid, p) in enumerate(first.items(), start=1):
            frames, stance = _noisy(rng, *labels[pid], schema.frame_names, schema.stance_names, label_noise)
            label_counts.update(frames)
            label_counts[f"stance:{stance}"] += 1
            fh.write(("[\n" if k == 1 else ",\n") + json.dumps(_task(k, p, schema, frames, stance), ensure_ascii=False))
        if annotations:
            fh.write("\n]\n")

    manifest = {
        "passages": len(made), "documents": n_docs, "seed": seed, "paragraphs_per_doc": paragraphs_per_doc,
        "near_dup_rate": near_dup_rate, "exact_dup_rate": exact_dup_rate, "label_noise": label_noise,
        "vocabulary_words": len(words), "cues_per_label": {k: len(v) for k, v in cues.items()},
        "counts": dict(counts), "annotated_labels": dict(sorted(label_counts.items())),
        "doc_bytes": sum(p.stat().st_size for p in (out_dir / "docs").iterdir()),
        "export_bytes": export.stat().st_size if annotations else 0,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of unique passages")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.n, args.out_dir, args.seed), indent=2))


if __name__ == "__main__":
    main()
