"""MLflow experiment tracking: where runs go, what a run records, how a model is logged.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else an SQLite store at
``<project>/mlflow.db`` (absolute, so ``dvc exp run --temp`` workspaces log to the same
store) with artifacts beside it in ``<project>/mlartifacts``. The model registry (versions,
aliases, promotion) is ``pipeline.registry``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.fsutil import project_root

log = logging.getLogger(__name__)


def tracking_uri(cwd: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else an absolute sqlite:///<project>/mlflow.db."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(cwd) / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a local sqlite store (never in the cwd, which may be a temp workspace)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def experiment_id(mlflow, name: str, uri: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location(uri))


def run_tags(stage: str) -> dict[str, str]:
    """Tags every run of a stage carries: the git commit and the dvc.lock digest it ran from."""
    root = project_root()
    tags = {"git_commit": _git_commit(root), "dvc_lock_sha256": _sha256(root / "dvc.lock"), "stage": stage}
    return {k: v for k, v in tags.items() if v}


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def flat_metrics(prefix: str, scores: dict) -> dict[str, float]:
    """Scalar metrics for MLflow from a score dict: ``prefix.score``, ``prefix.frames_macro_f1``,
    ``prefix.stance_accuracy``, ..., ``prefix.f1.<frame>``; non-finite values are left out."""
    out = {}
    if isinstance(scores.get("score"), (int, float)):
        out[f"{prefix}.score"] = float(scores["score"])
    for task in ("frames", "stance"):
        for k, v in scores[task].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[f"{prefix}.{task}_{k}"] = float(v)
    for label, m in scores["frames"].get("per_label", {}).items():
        out[f"{prefix}.f1.{label}"] = m["f1"]
    return out


@contextlib.contextmanager
def quiet_mlflow(level: int = logging.WARNING) -> Iterator[None]:
    """Mute MLflow chatter: registry messages printed to stderr ("Successfully registered ...") and
    per-model log lines (the CloudPickle notice, "Validating input example"); errors still raise."""
    logger = logging.getLogger("mlflow")
    old = logger.level
    logger.setLevel(level)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            yield
    finally:
        logger.setLevel(old)
        if sink.getvalue().strip():
            log.debug("mlflow: %s", sink.getvalue().strip())


def _pip_requirements() -> list[str]:
    """Pinned to what trained the model; skips MLflow's slow requirement inference (a subprocess per log)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "joblib", "model2vec"):
        with contextlib.suppress(PackageNotFoundError):
            reqs.append(f"{dist}=={version(dist)}")
    return reqs


def _pyfunc_kwargs(model, example_texts: list[str], workdir: Path) -> dict:
    """What mlflow.pyfunc.log_model / save_model need for a FramingModel (the pickle goes to ``workdir``)."""
    from mlflow.models import infer_signature

    from pipeline.mlflow_model import FramingPyfunc, records_frame

    pkl = model.save(workdir / f"{model.name}.pkl")
    # A signature inferred from a Python list gives a model that fails every prediction; use a 1-D str array.
    # The params schema lets callers ask for {"output": "record"} (spark_udf with a struct result).
    example = np.asarray(example_texts[:2], dtype=str)
    signature = infer_signature(example, records_frame(model.predict(list(example))), params={"output": "json"})
    return dict(python_model=FramingPyfunc(), artifacts={"model": str(pkl)}, signature=signature,
                input_example=example, pip_requirements=_pip_requirements(),
                code_paths=[str(Path(__file__).resolve().parent)])


def log_framing_model(mlflow, model, example_texts: list[str], workdir: Path):
    """Log a FramingModel as an MLflow pyfunc named ``model`` in the active run; returns ModelInfo."""
    kwargs = _pyfunc_kwargs(model, example_texts, workdir)
    with quiet_mlflow(logging.ERROR):
        return mlflow.pyfunc.log_model(name="model", **kwargs)


def save_framing_model(mlflow, model, example_texts: list[str], path: Path, workdir: Path) -> Path:
    """Write a FramingModel as an MLflow pyfunc model folder at ``path`` (no tracking server involved)."""
    kwargs = _pyfunc_kwargs(model, example_texts, workdir)
    with quiet_mlflow(logging.ERROR):
        mlflow.pyfunc.save_model(path=str(path), **kwargs)
    return path
