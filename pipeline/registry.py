"""The MLflow model registry: load a registered model, register a new version, move the alias,
and `framing models` (versions, aliases, scores, promotion decisions).

Promotion rule (``decide_promotion``): the alias moves only to a model at least as good as the
current holder, both scored now on the same test passages, and only on passages the holder never
trained on (the train stage's ``compare``); a holder that cannot be scored is never blindly replaced. Reading the holder, scoring it and moving the alias happen under one lock
(``promotion_lock``), and the alias is moved only if it still points where it pointed when the
holder was read (compare-and-set), so two concurrent trains cannot both promote.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from pipeline.errors import InputError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- reading


def alias_holder(client, model_name: str, alias: str):
    """The ModelVersion that ``alias`` points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def load_version(uri: str, model_name: str, version: str):
    """The FramingModel of ``model_name`` version ``version`` (read from its logged artifacts)."""
    from pipeline.model import FramingModel

    with tempfile.TemporaryDirectory() as tmp:
        return FramingModel.load(copy_version_file(uri, model_name, version, Path(tmp) / "model.pkl"))


def copy_version_file(uri: str, model_name: str, version: str, out: str | Path) -> Path:
    """Write the model file of ``model_name`` version ``version`` to ``out`` byte for byte (atomically)."""
    import mlflow

    from pipeline.fsutil import atomic_open

    mlflow.set_tracking_uri(uri)
    # The FramingModel file itself, not the pyfunc wrapper: moving the wrapper class breaks no old version.
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=tmp))
        pickles = sorted((local / "artifacts").glob("*.pkl"))
        if len(pickles) != 1:
            raise InputError(f"registry {uri}: {model_name} v{version} has {len(pickles)} model files; expected 1")
        with atomic_open(out, "wb") as fh:
            fh.write(pickles[0].read_bytes())
    return Path(out)


def load_registered(uri: str, model_name: str, alias: str) -> tuple[Any, Any]:
    """(ModelVersion, FramingModel) of ``model_name@alias``; (None, None) when the alias does not exist."""
    import mlflow

    mv = alias_holder(mlflow.MlflowClient(tracking_uri=uri), model_name, alias)
    if mv is None:
        return None, None
    return mv, load_version(uri, model_name, str(mv.version))


def load_champion(uri: str, model_name: str, alias: str):
    """The FramingModel of ``model_name@alias``; InputError when there is none."""
    mv, model = load_registered(uri, model_name, alias)
    if mv is None:
        raise InputError(f"registry {uri}: no model '{model_name}' with alias '{alias}' (run the train stage)")
    log.info("registry: %s v%s (@%s) from %s", model_name, mv.version, alias, uri)
    return model


# --------------------------------------------------------------------------- promotion


def decide_promotion(candidate_score: float, champion_score: float | None, *, champion_version: str | None = None,
                     champion_error: str | None = None) -> tuple[bool, str]:
    """Whether the candidate takes the alias, and why. Pure; a worse model never replaces the champion.

    - no current champion → promote;
    - champion could not be evaluated (``champion_error``) → keep it: replacing a model we cannot
      compare would be a blind swap; fix the champion or move the alias by hand;
    - otherwise promote iff candidate_score >= champion_score (ties promote: same quality, newer data).
    """
    if champion_error is not None:
        return False, f"kept champion v{champion_version}: it could not be evaluated on this test split ({champion_error})"
    if champion_score is None:
        return True, "no current champion"
    if round(candidate_score, 12) >= round(champion_score, 12):
        return True, f"test score {candidate_score:.4f} >= champion v{champion_version} {champion_score:.4f}"
    return False, f"test score {candidate_score:.4f} < champion v{champion_version} {champion_score:.4f}; champion kept"


@contextlib.contextmanager
def promotion_lock(uri: str, timeout: float = 600.0) -> Iterator[None]:
    """An exclusive lock per tracking store, held while the alias holder is read, scored and moved.

    Beside a local SQLite store the lock file sits next to the database; for a remote tracking
    server it is per machine (the compare-and-set in ``register`` still guards across machines).
    """
    from filelock import FileLock

    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):]).with_suffix(".promotion.lock")
    else:
        path = Path(tempfile.gettempdir()) / f"framing-promotion-{hashlib.sha256(uri.encode()).hexdigest()[:16]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=timeout):
        yield


@dataclass(frozen=True)
class Candidate:
    """What the registry needs to know about the model being registered."""

    name: str
    run_id: str
    model_uri: str
    test_score: float
    cv_score: float


@dataclass(frozen=True)
class Comparison:
    """Champion and candidate scored on the same test passages, none of which the champion trained on."""

    champion_score: float
    candidate_score: float
    passages: int
    how: str  # "re-scored" (the champion predicted now) or "stored" (its logged test predictions)


def register(uri: str, model_name: str, alias: str, candidate: Candidate,
             compare: Callable[[Any], Comparison], enabled: bool = True) -> dict:
    """Register ``candidate`` and move ``alias`` to it if ``decide_promotion`` says so.

    ``compare(holder)`` scores the alias holder (a ModelVersion) and the candidate on the same test
    passages, raising when it cannot; returns the summary recorded in models/registry.json.
    """
    summary: dict[str, Any] = {"model_name": model_name, "alias": alias, "registered": False, "version": None,
                               "promoted": False, "previous_champion_version": None, "champion_version": None,
                               "champion_test_score": None, "candidate_test_score": candidate.test_score,
                               "comparison": None}
    if not enabled:
        summary["reason"] = "registration disabled (train.register: false)"
        return summary
    import mlflow

    from pipeline.tracking import quiet_mlflow

    client = mlflow.MlflowClient(uri)
    with promotion_lock(uri):
        holder = alias_holder(client, model_name, alias)
        champ_version = str(holder.version) if holder is not None else None
        champ_score = error = comparison = None
        candidate_score = candidate.test_score
        if holder is not None:
            try:
                comparison = compare(holder)
                champ_score, candidate_score = comparison.champion_score, comparison.candidate_score
            except Exception as exc:  # noqa: BLE001 - a champion we cannot score must not be silently replaced
                error = f"{type(exc).__name__}: {exc}"
        promote, reason = decide_promotion(candidate_score, champ_score, champion_version=champ_version,
                                           champion_error=error)
        if comparison is not None:
            reason += f" (on {comparison.passages} test passages it never trained on, {comparison.how})"
        with quiet_mlflow():
            version = str(mlflow.register_model(candidate.model_uri, model_name).version)
        for key, value in {"candidate": candidate.name, "run_id": candidate.run_id,
                           "test_score": f"{candidate.test_score:.6f}", "cv_score": f"{candidate.cv_score:.6f}",
                           "promoted": str(promote), "decision": reason}.items():
            client.set_model_version_tag(model_name, version, key, value)
        if promote:
            now = alias_holder(client, model_name, alias)  # compare-and-set: nobody moved it meanwhile
            if (str(now.version) if now is not None else None) != champ_version:
                promote, reason = False, (f"alias moved to v{now.version if now else None} by another run while "
                                          f"v{version} was being compared; champion kept (re-run to compare)")
                client.set_model_version_tag(model_name, version, "promoted", "False")
                client.set_model_version_tag(model_name, version, "decision", reason)
            else:
                client.set_registered_model_alias(model_name, alias, version)
        if not promote:
            log.warning("train: not promoting %s v%s: %s", model_name, version, reason)
    summary.update({"registered": True, "version": version, "promoted": promote, "reason": reason,
                    "previous_champion_version": champ_version, "champion_test_score": champ_score,
                    "champion_version": version if promote else champ_version,
                    "comparison": None if comparison is None else {
                        "passages": comparison.passages, "how": comparison.how,
                        "champion_score": comparison.champion_score, "candidate_score": comparison.candidate_score}})
    return summary


# --------------------------------------------------------------------------- `framing models`


def list_versions(tracking: str, model_name: str) -> list[dict]:
    """One dict per registered version, newest first: version, aliases, run id, tags, test/CV metrics."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException:
        raise InputError(f"registry {tracking}: no registered model '{model_name}' (run the train stage)") from None
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    out = []
    for mv in sorted(client.search_model_versions(f"name='{model_name}'"), key=lambda v: -int(v.version)):
        metrics = {}
        if mv.run_id:
            run = client.get_run(mv.run_id)
            metrics = {k: round(v, 4) for k, v in sorted(run.data.metrics.items())
                       if k in ("cv.score", "test.score", "cv.frames_macro_f1", "cv.stance_macro_f1",
                                "test.frames_macro_f1", "test.stance_macro_f1")}
        out.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                    "run_id": mv.run_id, "created": mv.creation_timestamp, "tags": dict(mv.tags or {}),
                    "metrics": metrics})
    return out


def main(argv: list[str] | None = None) -> None:
    from pipeline.config import load_params
    from pipeline.tracking import tracking_uri

    parser = argparse.ArgumentParser(prog="framing models", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--model-name", help="default: train.model_name in params.yaml")
    parser.add_argument("--json", action="store_true", help="one JSON object per version instead of a table")
    args = parser.parse_args(argv)
    model_name = args.model_name or load_params(args.params).train.model_name
    uri = tracking_uri()
    versions = list_versions(uri, model_name)
    if args.json:
        for v in versions:
            print(json.dumps(v))
        return
    print(f"{model_name} @ {uri}")
    print(f"{'version':>7}  {'aliases':<12} {'candidate':<28} {'cv.score':>8} {'test.score':>10}  decision")
    for v in versions:
        m = v["metrics"]
        print(f"{v['version']:>7}  {','.join(v['aliases']) or '-':<12} {v['tags'].get('candidate', '?'):<28} "
              f"{m.get('cv.score', float('nan')):>8.4f} {m.get('test.score', float('nan')):>10.4f}  "
              f"{v['tags'].get('decision', '')}")
