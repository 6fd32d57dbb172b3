"""One Spark session per command: started for the given master URL, or the one already running
(spark-submit, a test's fixture), which is then left running.

Spark's JVM, its Python workers and MLflow's spark_udf log a lot at INFO; the session is made quiet
(WARN) and binds to 127.0.0.1 for ``local[N]`` masters, so a laptop or CI needs no network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
from typing import Iterator

from pipeline.config import SparkParams
from pipeline.errors import InputError

log = logging.getLogger(__name__)

# A task is one core's work: BLAS inside a task runs one thread (as in the local engine's workers), which
# also makes every engine call predict() in exactly the same way.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# What a task's Python traceback carries when our own code refused the input.
_INPUT_ERROR = re.compile(r"pipeline\.errors\.InputError: (.+)")


def require_java() -> None:
    """InputError with the fix when no Java runtime is on PATH (Spark 4 needs Java 17 or 21)."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise InputError("--engine spark needs Java 17 or 21 and none was found on PATH (nor JAVA_HOME): "
                         "install it, e.g. `sudo apt-get install openjdk-17-jre-headless` on Debian/Ubuntu")


def under_spark_submit() -> bool:
    """Whether spark-submit launched this process (its JVM is already running, with its --master)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextlib.contextmanager
def spark_session(master: str | None, app_name: str, spark_params: SparkParams | None = None,
                  conf: dict[str, str] | None = None) -> Iterator:
    """A SparkSession: on ``master`` when given; else spark-submit's when it launched us; else ``spark.master``.

    Reuses an active session and leaves it running; stops only a session it started itself.
    """
    from pyspark.sql import SparkSession

    spark_params = spark_params or SparkParams()
    active = SparkSession.getActiveSession()
    if active is not None:
        if master and active.sparkContext.master != master:
            log.warning("spark: using the running session on %s, not %s", active.sparkContext.master, master)
        yield active
        return
    submitted = under_spark_submit()  # then spark-submit's flags decide the JVM, the master and the executors' Python
    if master is None and not submitted:
        master = spark_params.master
    local = not submitted and master is not None and master.startswith("local")
    if not submitted:
        require_java()
        # Python workers must run this interpreter (the project's virtualenv), not whatever `python3` is.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = {
        "spark.ui.enabled": "false",
        # Spark's own stage progress bar, where someone is watching (tqdm covers the driver's own loops).
        "spark.ui.showConsoleProgress": str(sys.stderr.isatty()).lower(),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        **({} if submitted else {"spark.driver.memory": spark_params.driver_memory}),
        **({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"} if local else {}),
        **{f"spark.executorEnv.{var}": "1" for var in THREAD_VARS},
        "spark.executorEnv.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark: %s session on %s (%s)", spark.version, spark.sparkContext.master, app_name)
    try:
        yield spark
    finally:
        spark.stop()


def shuffle_partitions(spark, input_bytes: int, per_partition: int = 64 << 20) -> int:
    """Size the shuffles to the input: about 64 MiB each, at least one per core. Spark's default of 200
    makes a small archive cost 200 tasks per shuffle and a large one too few; returns the number set."""
    n = max(spark.sparkContext.defaultParallelism, -(-input_bytes // per_partition))
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    return n


def input_error_from(exc: BaseException) -> InputError | None:
    """The InputError a Spark task raised (its message is in the task's traceback), or None."""
    match = _INPUT_ERROR.search(str(exc))
    return InputError(match.group(1).strip()) if match else None


@contextlib.contextmanager
def task_errors() -> Iterator[None]:
    """Re-raise a task's InputError as itself, so the CLI prints the file and line and exits 2."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - Py4JJavaError / PythonException wrap the task's error
        error = input_error_from(exc)
        if error is None:
            raise
        raise error from None
