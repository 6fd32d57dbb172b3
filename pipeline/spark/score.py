"""`framing score --engine spark`: the local engine's output, computed by Spark tasks through
``mlflow.pyfunc.spark_udf`` of the registered model.

The parts, checks and columns are the local engine's (``pipeline.score_input``), run as Spark tasks:
one task per part reads its rows (``mapInArrow``), the model's UDF returns the whole record as a
struct (the pyfunc's ``output: record``, typed by ``pipeline.scored``), and each task writes its part.
Arrow batches are ``score.batch_size`` rows and BLAS runs one thread per task (``spark.session``), as
in the local engine, so the very same ``predict`` calls happen and the output is identical row by row.

The UDF needs a model logged with the ``output`` parameter (this pipeline's pyfunc since
``framing score`` exists); an older registry version is refused with that message. With ``--model
PATH`` the file is wrapped as an MLflow model folder first. On a cluster, spark_udf ships the model
folder from the driver to the executors; the executors need the project's Python environment.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

from pipeline.config import SparkParams
from pipeline.errors import InputError
from pipeline.score_input import Field, Part, read_part
from pipeline.scored import MODEL_FIELDS, prediction_names, prediction_schema
from pipeline.spark.session import spark_session, task_errors

log = logging.getLogger(__name__)

_PART_FILE = re.compile(r"^part-(\d+)-.*\.parquet$")


def _reader(parts: Sequence[Part], fields: Sequence[Field], schema, batch_rows: int) -> Callable:
    """mapInArrow body: the ids of a ``spark.range`` partition → the rows of those parts."""

    def run(batches: Iterator) -> Iterator:
        for batch in batches:
            for i in batch.column(0).to_pylist():
                for table in read_part(parts[i], fields, schema, batch_rows):
                    yield from table.to_batches()

    return run


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class SparkEngine:
    """The ``pipeline.score`` engine interface (map, score) on a Spark session for ``master``."""

    name = "spark"

    def __init__(self, scoring, master: str | None, spark_params: SparkParams):
        self.scoring, self.master, self.spark_params = scoring, master, spark_params
        self._session = None
        self._tmp = None
        self.spark = None

    def __enter__(self) -> "SparkEngine":
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per model file
        self._session = spark_session(self.master, "framing-score", self.spark_params)
        self.spark = self._session.__enter__()
        self._tmp = tempfile.TemporaryDirectory(prefix="framing-score-spark-")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._session.__exit__(*exc)
        finally:
            self._tmp.cleanup()

    def describe(self) -> dict:
        return {"master": self.spark.sparkContext.master}

    def map(self, fn: Callable, items: Sequence) -> list:
        if not items:
            return []
        with task_errors():
            return self.spark.sparkContext.parallelize(list(items), len(items)).map(fn).collect()

    def _udf(self):
        import mlflow
        from mlflow.exceptions import MlflowException
        from pyspark.sql.pandas.types import from_arrow_schema

        model, scoring = self.scoring.model, self.scoring
        uri = scoring.uri
        if uri is None:  # a model file: wrap it as an MLflow model folder (spark_udf ships folders)
            from pipeline.tracking import save_framing_model

            tmp = Path(self._tmp.name)
            uri = str(save_framing_model(mlflow, model, ["Russia and North Korea signed a treaty."],
                                         tmp / "mlflow_model", tmp))
        elif scoring.tracking:
            mlflow.set_tracking_uri(scoring.tracking)
        from pipeline.tracking import quiet_mlflow

        # MLflow ignores (with a warning) a param its model does not declare: the UDF would then get the
        # default JSON columns back and fail row by row, so the signature is checked here, once.
        try:
            signature = mlflow.models.get_model_info(uri).signature
        except MlflowException as exc:
            raise InputError(f"{uri}: cannot read the model: {exc}") from None
        declared = {p.name for p in (signature.params.params if signature and signature.params else [])}
        if "output" not in declared:
            raise InputError(f"{uri}: this model was logged before the pyfunc could return whole records (its "
                             "signature has no 'output' parameter): retrain it (`dvc repro`) or score with "
                             "--engine local")
        result = from_arrow_schema(prediction_schema(model.frame_names, model.stance_names))
        try:
            # env_manager "local": the executors run this environment (MLflow warns that it does not rebuild it).
            with quiet_mlflow(logging.ERROR):
                return mlflow.pyfunc.spark_udf(self.spark, uri, result_type=result, env_manager="local",
                                               params={"output": "record"})
        except MlflowException as exc:
            raise InputError(f"{uri}: cannot load the model for spark_udf: {exc}") from None

    def score(self, jobs: Sequence, total_rows: int, done_rows: int) -> None:
        """Score the parts of ``jobs`` (score.PartJob) into their folder as part-NNNNN.parquet files."""
        import pyarrow.parquet as pq
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pipeline.scored import output_schema

        if not jobs:
            return
        first = jobs[0]
        model = self.scoring.model
        self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(first.batch_size))
        udf = self._udf()
        names = [f.name for f in first.fields]
        reader = _reader([j.part for j in jobs], first.fields, first.schema, first.batch_size)
        rows = (self.spark.range(0, len(jobs), 1, len(jobs))
                .mapInArrow(reader, from_arrow_schema(first.schema)))
        scored = rows.select(*[F.col(_quoted(n)) for n in names], udf(F.col("text")).alias("_p"))
        out = scored.select(*[F.col(_quoted(n)) for n in names],
                            *[F.col("_p").getField(n).alias(n) for n in prediction_names(model.frame_names,
                                                                                          model.stance_names)],
                            F.lit(self.scoring.name).alias(MODEL_FIELDS[0]),
                            F.lit(self.scoring.version).alias(MODEL_FIELDS[1]))
        staging = Path(first.folder) / ".spark"
        log.info("score (spark): %d parts, %d rows to go", len(jobs), total_rows - done_rows)
        with task_errors():
            out.write.mode("overwrite").parquet(staging.as_uri())
        # Spark names a task's file by its partition: partition k is jobs[k]. An empty part writes no file.
        written = {}
        for path in staging.iterdir():
            match = _PART_FILE.match(path.name)
            if match:
                written[int(match.group(1))] = path
        schema = output_schema(first.schema, model.frame_names, model.stance_names)
        from pipeline.score import part_name

        for k, job in enumerate(jobs):
            target = Path(job.folder) / part_name(job.index)
            if k in written:
                os.replace(written[k], target)
            else:
                pq.write_table(schema.empty_table(), target)
        shutil.rmtree(staging)
