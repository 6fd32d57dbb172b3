"""`framing score`: frames, stance, scores and evidence for every row of an archive, as a Parquet dataset.

    framing score data/passages.jsonl --out data/scored                    # local engine, every core
    framing score archive/ --out scored/ --engine spark --master local[2]  # Spark, through mlflow's spark_udf
    framing score docs.parquet --out scored/ --model models/model.pkl      # a model file, not the registry

INPUT is a JSONL file or folder (a ``text`` field per line; other fields kept), a Parquet file or
dataset folder with a ``text`` column, or the ingest stage's passages.jsonl. The output has one row
per input row, in input order: the input's fields, then the columns of ``pipeline.scored``.

Bad input (a row without ``text``, a non-string or empty ``text``, malformed JSON, an unreadable
Parquet file) stops the command before anything is written, naming the file and line (JSONL) or
row (Parquet, counting from 0): every row is checked first. An unknown model stops it too.

The output folder appears whole or not at all: parts are written, each atomically, into a hidden
sibling ``.<DIR>.partial`` that is renamed to DIR at the end. An interrupted local run resumes there:
parts already written for the same input (same bytes), model and columns are skipped. Every run is
recorded in MLflow (experiment ``score.experiment``): input digest and rows, model, engine, time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tqdm import tqdm

from pipeline.config import ScoreParams, SparkParams, TrainParams, load_params
from pipeline.errors import InputError
from pipeline.fsutil import write_json
from pipeline.score_input import Field, Part, digest_of, input_fields, inspect, plan, read_part
from pipeline.scored import output_schema, prediction_table, reserved_names

log = logging.getLogger(__name__)

PLAN = "_plan.json"


@dataclass(frozen=True)
class ScoringModel:
    """The model and what the output calls it; ``uri`` is what spark_udf loads (None: build from ``file``)."""

    model: Any
    name: str
    version: str
    file: Path | None = None
    uri: str | None = None
    tracking: str | None = None


def resolve_model(model_path: str | Path | None, train: TrainParams, tracking: str | None = None) -> ScoringModel:
    """``--model PATH`` (name: the FramingModel's, version: ``sha256:`` of the file) or the registry's
    ``train.model_name@train.alias`` pinned to its current version; InputError when there is none."""
    if model_path is not None:
        from pipeline.model import FramingModel

        model = FramingModel.load(model_path)
        digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]
        return ScoringModel(model, model.name, f"sha256:{digest}", file=Path(model_path))
    from pipeline.registry import load_registered
    from pipeline.tracking import tracking_uri

    uri = tracking or tracking_uri()
    mv, model = load_registered(uri, train.model_name, train.alias)
    if mv is None:
        raise InputError(f"registry {uri}: no model '{train.model_name}' with alias '{train.alias}' "
                         "(run `dvc repro`, or give --model PATH)")
    version = str(mv.version)
    log.info("score: %s v%s (@%s) from %s", train.model_name, version, train.alias, uri)
    return ScoringModel(model, train.model_name, version, uri=f"models:/{train.model_name}/{version}", tracking=uri)


# --------------------------------------------------------------------------- writing one part

_WORKER: dict[str, Any] = {}


def _init_worker(model_path: str | None, model: Any = None) -> None:
    """Pool initializer: one BLAS thread per process (the pool is the parallelism), the model loaded once."""
    from threadpoolctl import threadpool_limits

    from pipeline.model import FramingModel

    threadpool_limits(1)
    _WORKER["model"] = model if model is not None else FramingModel.load(model_path)


@dataclass(frozen=True)
class PartJob:
    part: Part
    index: int
    fields: tuple[Field, ...]
    schema: Any  # pa.Schema of the input columns
    folder: str
    model_name: str
    model_version: str
    batch_size: int


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def output_rows(batch, model, model_name: str, model_version: str):
    """One input table → the same rows with the prediction and model columns (pipeline.scored)."""
    import pyarrow as pa

    preds = prediction_table(model.predict(batch.column("text").to_pylist()), model.frame_names, model.stance_names)
    n = batch.num_rows
    return pa.Table.from_arrays([*batch.columns, *preds.columns, pa.array([model_name] * n, pa.string()),
                                 pa.array([model_version] * n, pa.string())],
                                schema=output_schema(batch.schema, model.frame_names, model.stance_names))


def score_part(job: PartJob) -> int:
    """Score one part into ``folder/part-NNNNN.parquet`` (written to a temp name, then renamed); rows written."""
    import pyarrow.parquet as pq

    model = _WORKER["model"]
    target = Path(job.folder) / part_name(job.index)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=job.folder)
    os.close(fd)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, output_schema(job.schema, model.frame_names, model.stance_names)) as writer:
            for batch in read_part(job.part, job.fields, job.schema, job.batch_size):
                writer.write_table(output_rows(batch, model, job.model_name, job.model_version))
                rows += batch.num_rows
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; parts are ordinary outputs
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return rows


# --------------------------------------------------------------------------- the local engine


class LocalEngine:
    """A process pool (``workers`` processes; 1: this process) for planning, checking and scoring parts."""

    name = "local"

    def __init__(self, scoring: ScoringModel, workers: int):
        self.workers = workers
        self.scoring = scoring
        self._stack = contextlib.ExitStack()
        self.pool = None

    def __enter__(self) -> "LocalEngine":
        if self.workers == 1:
            _init_worker(None, self.scoring.model)
            return self
        model_file = self.scoring.file
        if model_file is None:  # a registry model: workers load it from a file of our own
            tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="framing-score-")))
            model_file = self.scoring.model.save(tmp / "model.pkl")
        # spawn, not fork: the parent holds MLflow's threads and database connections.
        self.pool = self._stack.enter_context(cf.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(str(model_file),)))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def map(self, fn: Callable, items: Sequence) -> list:
        if self.pool is None:
            return [fn(x) for x in items]
        return list(self.pool.map(fn, items, chunksize=max(1, len(items) // (self.workers * 8))))

    def score(self, jobs: Sequence[PartJob], total_rows: int, done_rows: int) -> None:
        with tqdm(total=total_rows, initial=done_rows, desc="score", unit="row", disable=None) as bar:
            if self.pool is None:
                for job in jobs:
                    bar.update(score_part(job))
                return
            futures = [self.pool.submit(score_part, job) for job in jobs]
            try:
                for future in cf.as_completed(futures):
                    bar.update(future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def describe(self) -> dict:
        return {"workers": self.workers}


# --------------------------------------------------------------------------- the run


def part_bytes(input_path: str | Path, part_mib: int) -> int:
    """JSONL bytes per part: ``part_mib``, but at least 32 parts (of 1 MiB or more) for a small input so
    every worker has work. It depends on the input alone, never on the workers, so a resumed run
    (with other --workers or the other engine) finds the same parts."""
    path = Path(input_path)
    total = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*.jsonl"))
    return max(1 << 20, min(part_mib << 20, -(-total // 32)))


def _swap_in(work: Path, out: Path) -> None:
    """Replace ``out`` by the finished ``work`` folder (the old output exists until the new one is whole)."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(work, out)
    shutil.rmtree(old, ignore_errors=True)


def _read_plan(folder: Path) -> dict | None:
    try:
        return json.loads((folder / PLAN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run(input_path: str | Path, out: str | Path, params: ScoreParams, scoring: ScoringModel, *,
        engine: str = "local", workers: int | None = None, master: str | None = None,
        spark_params: SparkParams | None = None, tracking: str | None = None,
        log_to_mlflow: bool = True) -> dict:
    """Score every row of ``input_path`` into the Parquet dataset ``out``; returns the run summary."""
    started = time.perf_counter()
    out = Path(out)
    if engine == "spark":
        from pipeline.spark.score import SparkEngine

        runner = SparkEngine(scoring, master, spark_params or SparkParams())
    else:
        runner = LocalEngine(scoring, workers or params.workers or len(os.sched_getaffinity(0)))
    model = scoring.model
    with runner:
        parts = plan(input_path, part_bytes(input_path, params.part_mib), runner.map)
        infos = runner.map(inspect, parts)
        fields, schema = input_fields(parts, infos, reserved_names(model.frame_names, model.stance_names))
        rows = sum(i.rows for i in infos)
        digest = digest_of(parts, infos)
        wanted = {"input": str(input_path), "input_digest": digest, "rows": rows,
                  "parts": [p.key() for p in parts], "columns": str(output_schema(schema, model.frame_names,
                                                                                  model.stance_names)),
                  "model_name": scoring.name, "model_version": scoring.version}
        log.info("score: %s: %d rows in %d parts (sha256 %s…)", input_path, rows, len(parts), digest[:12])
        work = out.with_name(f".{out.name}.partial")
        skipped = 0
        if _read_plan(out) == wanted:
            log.info("score: %s already holds this input scored by this model; nothing to do", out)
            skipped = len(parts)
        else:
            if _read_plan(work) != wanted:
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True)
                write_json(work / PLAN, wanted)
            jobs = [PartJob(p, i, tuple(fields), schema, str(work), scoring.name, scoring.version, params.batch_size)
                    for i, p in enumerate(parts)]
            written = {j.index for j in jobs if (work / part_name(j.index)).is_file()}
            todo = [j for j in jobs if j.index not in written]
            skipped = len(written)
            if skipped:
                log.info("score: resuming: %d of %d parts already written", skipped, len(jobs))
            done_rows = sum(infos[i].rows for i in written)
            runner.score(todo, rows, done_rows)
            _swap_in(work, out)
    duration = time.perf_counter() - started
    summary = {"input": str(input_path), "output": str(out), "rows": rows, "parts": len(parts),
               "parts_skipped": skipped, "input_digest": digest, "engine": runner.name, **runner.describe(),
               "model_name": scoring.name, "model_version": scoring.version,
               "duration_s": round(duration, 3), "rows_per_s": round(rows / duration, 1) if duration else None}
    if log_to_mlflow:
        summary["mlflow_run_id"] = log_run(summary, params.experiment, tracking)
    log.info("score: %d rows → %s in %.1f s (%.0f rows/s, engine %s)", rows, out, duration,
             rows / duration if duration else 0, runner.name)
    return summary


def log_run(summary: dict, experiment: str, tracking: str | None = None) -> str:
    """Record a scoring run in MLflow: input (digest, rows) as a dataset input, model, engine, time; its run id."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from pipeline.tracking import experiment_id, quiet_mlflow, run_tags, tracking_uri

    uri = tracking or tracking_uri()
    mlflow.set_tracking_uri(uri)
    with quiet_mlflow():
        exp = experiment_id(mlflow, experiment, uri)
        with mlflow.start_run(experiment_id=exp, run_name=f"score {Path(summary['input']).name}",
                              tags=run_tags("score")) as active:
            mlflow.log_params({k: summary[k] for k in ("input", "output", "input_digest", "engine", "model_name",
                                                       "model_version") if k in summary}
                              | {k: summary[k] for k in ("workers", "master") if k in summary})
            mlflow.log_metrics({"rows": summary["rows"], "parts": summary["parts"],
                                "parts_skipped": summary["parts_skipped"], "duration_s": summary["duration_s"],
                                "rows_per_s": summary["rows_per_s"] or 0.0})
            with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are the local file
                warnings.simplefilter("ignore")
                source = resolve_dataset_source(Path(summary["input"]).resolve().as_uri())
            mlflow.log_input(MetaDataset(source, name=Path(summary["input"]).name, digest=summary["input_digest"][:16]),
                             context="scoring")
            return active.info.run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing score", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="JSONL file or folder, Parquet file or dataset folder (a 'text' field)")
    parser.add_argument("--out", required=True, help="output Parquet dataset folder (replaced when done)")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--model", help="a FramingModel file (default: train.model_name@train.alias from the registry)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--workers", type=int, help="local engine processes (default: score.workers; 0 = every core)")
    parser.add_argument("--master", help="Spark master URL for --engine spark (default: spark-submit's, else spark.master)")
    parser.add_argument("--batch-size", type=int, help="passages per predict() call (default: score.batch_size)")
    args = parser.parse_args(argv)
    if args.engine != "spark" and args.master:
        parser.error("--master needs --engine spark")
    if args.engine == "spark" and args.workers:
        parser.error("--workers is for --engine local (Spark's parallelism is its master's cores)")
    params = load_params(args.params)
    score = params.score
    if args.batch_size:
        from dataclasses import replace

        score = replace(score, batch_size=args.batch_size)
    scoring = resolve_model(args.model, params.train)
    summary = run(args.input, args.out, score, scoring, engine=args.engine, workers=args.workers,
                  master=args.master, spark_params=params.spark)
    print(json.dumps(summary, indent=2))


def iter_rows(folder: str | Path) -> Iterator[dict]:
    """The rows of a scored dataset, in input order (part files sorted by name)."""
    import pyarrow.parquet as pq

    for path in sorted(p for p in Path(folder).glob("*.parquet") if not p.name.startswith((".", "_"))):
        yield from pq.read_table(path).to_pylist()
