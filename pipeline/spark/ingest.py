"""`framing ingest --engine spark`: the ingest stage's records, computed on a Spark cluster.

Same rules and code as the local engine (``pipeline.ingest``: reading, cleaning, paragraphing,
normalisation, passage ids, the MinHash signatures of ``pipeline.dedup``); only the bookkeeping
that needs every passage at once is distributed:

1. one task per document file, and per ``spark.chunk_mib`` byte range of a JSONL file (a line is
   a document; a first job counts lines so every task knows its line numbers);
2. each task cleans its documents (``ingest.document_passages``) and emits one row per kept
   paragraph — its position (task, document, paragraph: the local engine's reading order), id,
   text, source, MinHash signature — and one row per document with its drop counts;
3. exact duplicates: a group-by on the passage id keeps the first occurrence's text and meta and
   every source in reading order;
4. near duplicates: LSH banding as a group-by on (band, band key). As in ``dedup.cluster``, each
   bucket's first passage is paired with every other member; pairs whose signatures agree on at
   least ``threshold`` of their positions are edges. Only the edges (a few per near-duplicate) go
   to the driver, which joins them with the same union-find (cluster = the first member's id);
5. the records, sorted in reading order, are written by the executors (a file per range partition)
   and concatenated by the driver into one JSONL file: exactly the local engine's bytes.

The driver holds per document its kept-paragraph count (as the local report lists them) and the
near-duplicate edges; everything per passage stays on the executors (spilled to their disks).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

from tqdm import tqdm

from pipeline.config import IngestParams, SparkParams
from pipeline.errors import InputError
from pipeline.fsutil import atomic_open, write_json
from pipeline.linechunks import Chunk, count_lines, numbered, split
from pipeline.spark.session import shuffle_partitions, spark_session, task_errors
from pipeline.unionfind import UnionFind

log = logging.getLogger(__name__)

_PART = re.compile(r"^part-(\d+)")
STAT_FIELDS = ("navigation", "caption", "teaser", "not_prose", "end_marker", "exact_duplicate")


def _row_arrow_schema():
    """One row per kept paragraph (``is_doc`` false) or per document (true: its counts); (t, d, p) is
    the reading order: task, document within the task, paragraph within the document."""
    import pyarrow as pa

    i32, s = pa.int32(), pa.string()
    return pa.schema([("t", i32), ("d", i32), ("p", i32), ("is_doc", pa.bool_()), ("pid", s), ("text", s),
                      ("meta", s), ("doc_id", s), ("path", s), ("char_start", i32), ("char_end", i32), ("date", s),
                      ("sig", pa.list_(i32)), ("file", s), ("kept", i32), *((k, i32) for k in STAT_FIELDS[:-1])])


def _row_schema():
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_row_arrow_schema())


def _task_rows(tasks: Sequence[tuple[str, Chunk | None]], params: IngestParams, seed: int, batch_rows: int = 4096):
    """mapInArrow body: the ``spark.range`` ids of this partition → rows of those tasks' documents."""
    import numpy as np
    import pyarrow as pa

    from pipeline.dedup import MinHasher
    from pipeline.ingest import Cleaner, document_passages, file_documents

    arrow_schema = _row_arrow_schema()

    def emit(rows: list[dict]):
        return pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    def run(batches: Iterator) -> Iterator:
        cleaner = Cleaner(params)
        hasher = MinHasher(params.dedup.num_perm, params.dedup.shingle_words, seed=seed)
        for batch in batches:
            for t in batch.column(0).to_pylist():
                path, chunk = tasks[t]
                rows: list[dict] = []
                for d, doc in enumerate(file_documents(Path(path), params.txt_paragraphs, chunk)):
                    stats: Counter = Counter()
                    kept = 0
                    meta = json.dumps(doc.meta, ensure_ascii=False)
                    for pid, text, source in document_passages(doc, cleaner, stats):
                        kept += 1
                        sig = hasher.signature(text).view(np.int32)  # same bits; Spark has no uint32
                        rows.append({"t": t, "d": d, "p": source[2], "is_doc": False, "pid": pid, "text": text,
                                     "meta": meta, "doc_id": source[0], "path": source[1], "char_start": source[3],
                                     "char_end": source[4], "date": source[5], "sig": sig.tolist()})
                        if len(rows) >= batch_rows:
                            yield emit(rows)
                            rows = []
                    rows.append({"t": t, "d": d, "p": -1, "is_doc": True, "doc_id": doc.doc_id, "file": path,
                                 "kept": kept, **{k: stats[k] for k in STAT_FIELDS[:-1]}})
                if chunk is not None:  # lets the driver find JSONL files with no document at all
                    rows.append({"t": t, "d": -1, "p": -1, "is_doc": True, "file": path, "kept": 0})
                if rows:
                    yield emit(rows)

    return run


def _format_lines():
    """mapInArrow body: unique passages (first occurrence, sources, cluster) → passages.jsonl lines."""
    import pyarrow as pa

    from pipeline.ingest import passage_record

    def run(batches: Iterator) -> Iterator:
        for batch in batches:
            cols = batch.to_pydict()
            lines = []
            for pid, text, meta, sources, cluster_id in zip(cols["pid"], cols["text"], cols["meta"], cols["sources"],
                                                             cols["cluster_id"]):
                srcs = [(s["doc_id"], s["path"], s["p"], s["char_start"], s["char_end"], s["date"]) for s in sources]
                record = passage_record(pid, text, json.loads(meta), srcs, cluster_id)
                lines.append(json.dumps(record, ensure_ascii=False))  # Spark's text writer adds the newline
            yield pa.RecordBatch.from_arrays([pa.array(cols["t"], pa.int32()), pa.array(cols["d"], pa.int32()),
                                              pa.array(cols["p"], pa.int32()), pa.array(lines, pa.string())],
                                             names=["t", "d", "p", "line"])

    return run


def plan_tasks(spark, paths: Sequence[Path], chunk_bytes: int) -> list[tuple[str, Chunk | None]]:
    """(file, byte range) per task in reading order: a task per file, JSONL files cut into ranges
    whose first line numbers come from a line-counting job."""
    chunks = {p: split(p, chunk_bytes) for p in paths if p.suffix.lower() == ".jsonl"}
    flat = [c for cs in chunks.values() for c in cs]
    counts = spark.sparkContext.parallelize(flat, len(flat)).map(count_lines).collect() if flat else []
    numbered_chunks = iter(numbered(flat, counts))
    tasks: list[tuple[str, Chunk | None]] = []
    for path in paths:
        tasks += [(path.as_posix(), next(numbered_chunks)) for _ in chunks[path]] if path in chunks \
            else [(path.as_posix(), None)]
    return tasks


def run(input_dirs: str | Path | Sequence[str | Path], passages: str | Path, report: str | Path,
        params: IngestParams, seed: int, spark_params: SparkParams, master: str | None = None) -> dict:
    """Ingest as ``pipeline.ingest.run`` does, on Spark (``master``: a master URL; None: spark-submit's or spark.master);
    same ``passages`` and ``report``. InputError naming file and line on bad input; nothing is written then."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from pipeline.ingest import list_documents, summarize

    input_dirs = [Path(input_dirs)] if isinstance(input_dirs, (str, Path)) else [Path(d) for d in input_dirs]
    for input_dir in input_dirs:
        if not input_dir.is_dir():
            raise InputError(f"{input_dir}: input folder not found")
    paths = list_documents(input_dirs)
    num_perm, bands, threshold = params.dedup.num_perm, params.dedup.bands, params.dedup.threshold
    rows_per_band = num_perm // bands
    with spark_session(master, "framing-ingest", spark_params) as spark, \
            task_errors():
        tasks = plan_tasks(spark, paths, spark_params.chunk_mib << 20)
        shuffle_partitions(spark, sum(p.stat().st_size for p in paths))
        log.info("ingest: %d files → %d Spark tasks", len(paths), len(tasks))
        rows = (spark.range(0, len(tasks), 1, len(tasks))
                .mapInArrow(_task_rows(tasks, params, seed), _row_schema())
                .persist(StorageLevel.DISK_ONLY))

        # Per document, in reading order: kept paragraphs and drop counts (the report's fields).
        stats: Counter = Counter()
        per_doc: dict[str, int] = {}
        files_with_docs: set[str] = set()
        jsonl_files = {path for path, chunk in tasks if chunk is not None}
        for r in rows.filter("is_doc").select("t", "d", "doc_id", "file", "kept", *STAT_FIELDS[:-1]) \
                .orderBy("t", "d").collect():
            if r["d"] < 0:
                continue
            files_with_docs.add(r["file"])
            per_doc[r["doc_id"]] = r["kept"]
            for k in STAT_FIELDS[:-1]:
                stats[k] += r[k]
        for path in sorted(jsonl_files - files_with_docs, key=[p.as_posix() for p in paths].index):
            raise InputError(f"{path}: no documents (every line is blank)")

        paras = rows.filter(~F.col("is_doc"))
        source = F.struct("t", "d", "p", "doc_id", "path", "char_start", "char_end", "date")
        unique = (paras.groupBy("pid")
                  .agg(F.min(F.struct("t", "d", "p", "text", "meta", "sig")).alias("first"),
                       F.sort_array(F.collect_list(source)).alias("sources"))
                  .select("pid", "first.t", "first.d", "first.p", "first.text", "first.meta", "first.sig", "sources")
                  .persist(StorageLevel.DISK_ONLY))
        n_paragraphs, n_unique = paras.count(), unique.count()
        stats["exact_duplicate"] = n_paragraphs - n_unique

        # LSH buckets: (band, band key) → first member (the head) and the others; pairs checked as dedup.cluster does.
        okey = F.struct("t", "d", "p")
        banded = unique.select(okey.alias("k"), F.posexplode(F.array(*[
            F.slice("sig", b * rows_per_band + 1, rows_per_band) for b in range(bands)])).alias("band", "key"))
        buckets = (banded.groupBy("band", "key").agg(F.min("k").alias("head"), F.collect_list("k").alias("members"))
                   .filter(F.size("members") > 1))
        pairs = (buckets.select("head", F.explode("members").alias("member")).filter(F.col("head") != F.col("member"))
                 .distinct())
        sigs = unique.select(okey.alias("k"), "pid", "sig")
        h, m = sigs.alias("h"), sigs.alias("m")
        agree = F.aggregate(F.zip_with("h.sig", "m.sig", lambda x, y: F.when(x == y, 1).otherwise(0)), F.lit(0),
                            lambda acc, v: acc + v)
        edges = (pairs.join(h, F.col("head") == F.col("h.k")).join(m, F.col("member") == F.col("m.k"))
                 .filter(agree / F.lit(num_perm) >= F.lit(float(threshold)))
                 .select(F.col("h.k").alias("a"), F.col("h.pid").alias("a_pid"),
                         F.col("m.k").alias("b"), F.col("m.pid").alias("b_pid")))
        sets: UnionFind = UnionFind()
        pid_of: dict[tuple, str] = {}
        for e in edges.collect():
            a, b = tuple(e["a"]), tuple(e["b"])
            pid_of[a], pid_of[b] = e["a_pid"], e["b_pid"]
            sets.union(a, b)
        roots = {k: sets.find(k) for k in pid_of}
        near_dup = sum(1 for k, root in roots.items() if root != k)
        clusters = spark.createDataFrame([(k[0], k[1], k[2], pid_of[root]) for k, root in roots.items() if root != k],
                                         "t int, d int, p int, cluster_id string")

        records = (unique.join(F.broadcast(clusters), ["t", "d", "p"], "left")
                   .withColumn("cluster_id", F.coalesce("cluster_id", "pid"))
                   .select("t", "d", "p", "pid", "text", "meta", "sources", "cluster_id")
                   .orderBy("t", "d", "p")
                   .mapInArrow(_format_lines(), "t int, d int, p int, line string"))
        # The executors write the sorted lines (a file per range partition, in order); the driver only
        # concatenates the files, so no partition ever has to fit in the driver's heap.
        passages = Path(passages)
        staging = passages.parent / f".{passages.name}.spark"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            records.select("line").write.text(staging.resolve().as_uri())
            parts = sorted(staging.glob("part-*"), key=lambda p: int(_PART.match(p.name).group(1)))
            with atomic_open(passages, "wb", encoding=None) as out:
                for part in tqdm(parts, desc="ingest (spark): write", unit="part", disable=None):
                    with part.open("rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        rows.unpersist()
        unique.unpersist()
    summary = summarize(per_doc, n_unique, stats["exact_duplicate"], near_dup, n_unique - near_dup, stats)
    write_json(report, summary)
    log.info("ingest (spark): %d documents → %d passages (%d exact duplicates merged, %d near-duplicates clustered)",
             summary["documents"], n_unique, summary["exact_duplicates_merged"], near_dup)
    return summary
