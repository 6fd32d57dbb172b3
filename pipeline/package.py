"""Stage `package`: the MLflow champion → BentoML model store → a Bento.

The registered ``framing-classifier@champion`` is loaded through MLflow and its
FramingModel (the project's own predictor, not ``bentoml.mlflow.import_model``,
which would expose only ``predict`` and lose probabilities and evidence) is
saved to the BentoML model store, labelled with the MLflow version and run id
and carrying the training metrics and the label schema. Then the service in
serving/ is built into a Bento. Re-running with an unchanged champion reuses
both; moving the alias and re-running `dvc repro` rebuilds them (the stage is
always run, because the alias lives in MLflow, outside DVC's view).

BentoML's home defaults to ``<project>/.bentoml`` (git-ignored) so the store
travels with the project; set BENTOML_HOME to use another.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from pipeline.config import load_params
from pipeline.errors import InputError
from pipeline.fsutil import write_json
from pipeline.schema import LabelSchema, load_label_schema

log = logging.getLogger(__name__)

SERVICE = "serving.service:FramingClassifier"
MODEL_ALIAS = "framing-model"  # the service loads the Bento's model by this alias (serving/settings.py)


def project_bentoml_home(root: str | Path = ".") -> None:
    """Point BentoML at the project's own store unless BENTOML_HOME is already set."""
    os.environ.setdefault("BENTOML_HOME", str((Path(root) / ".bentoml").resolve()))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def _schema_metadata(schema: LabelSchema) -> dict:
    as_dict = lambda labels: {l.key: {"display": l.display, "definition": l.definition} for l in labels}  # noqa: E731
    return {"schema_version": schema.schema_version, "target": schema.target,
            "frames": as_dict(schema.frames), "stance": as_dict(schema.stance)}


def _listed(lister, name: str) -> list:
    """Store entries named ``name``; an empty list where BentoML raises NotFound."""
    from bentoml.exceptions import NotFound

    try:
        return lister(name)
    except NotFound:
        return []


def import_champion(tracking: str, model_name: str, alias: str, schema: LabelSchema, metrics: dict):
    """Save ``model_name@alias`` into the BentoML store (reusing an earlier import of the same version)."""
    import bentoml

    from pipeline.registry import load_registered

    version, model = load_registered(tracking, model_name, alias)
    if version is None:
        raise InputError(f"MLflow ({tracking}): no model '{model_name}@{alias}'; run `dvc repro train` first")
    labels = {"mlflow_model": model_name, "mlflow_version": str(version.version), "mlflow_run_id": version.run_id,
              "mlflow_alias": alias, "candidate": model.name}
    for existing in _listed(bentoml.models.list, model_name):
        if all(existing.info.labels.get(k) == v for k, v in labels.items()):
            log.info("package: %s already holds %s v%s", existing.tag, model_name, version.version)
            return existing, version
    with bentoml.models.create(model_name, labels=labels,
                               metadata={"metrics": metrics, "labels": _schema_metadata(schema),
                                         "tracking_uri": tracking}) as bento_model:
        model.save(bento_model.path_of("model.pkl"))
    log.info("package: imported %s v%s (run %s) as %s", model_name, version.version, version.run_id, bento_model.tag)
    return bentoml.models.get(bento_model.tag), version


def build_bento(model_tag, build_config: Path, root: Path):
    """Build the service into a Bento that pins ``model_tag`` (reused when already built for it)."""
    import bentoml
    import yaml

    config = yaml.safe_load(build_config.read_text(encoding="utf-8"))
    source_sha = _source_digest(root, config, build_config)
    for bento in _listed(bentoml.list, "framing_classifier"):
        if bento.info.labels.get("model_tag") == str(model_tag) and bento.info.labels.get("source_sha") == source_sha:
            log.info("package: %s already built for %s from these sources", bento.tag, model_tag)
            return bento
    config.setdefault("labels", {}).update(model_tag=str(model_tag), source_sha=source_sha)
    # The service asks for its model by alias, so the Bento carries and serves exactly this one.
    config["models"] = [{"tag": str(model_tag), "alias": MODEL_ALIAS}]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as pinned:
        yaml.safe_dump(config, pinned)
        pinned.flush()
        bento = bentoml.bentos.build_bentofile(pinned.name, build_ctx=str(root))
    log.info("package: built %s", bento.tag)
    return bento


def _source_digest(root: Path, config: dict, build_config: Path) -> str:
    """SHA-256 over the build config and every file the Bento includes."""
    digest = hashlib.sha256(build_config.read_bytes())
    files = sorted({p for pattern in config.get("include", []) for p in root.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run(registry: str | Path, metrics: str | Path, labels: str | Path, build_config: str | Path,
        bento_out: str | Path, model_name: str, alias: str, tracking: str | None = None) -> dict:
    """Import the champion into BentoML, build the Bento, and record both tags in ``bento_out``."""
    project_bentoml_home()
    registry = json.loads(Path(registry).read_text(encoding="utf-8"))
    tracking = tracking or registry.get("tracking_uri")
    if not tracking:
        raise InputError("no MLflow tracking URI: set MLFLOW_TRACKING_URI or re-run the train stage")
    metrics_doc = json.loads(Path(metrics).read_text(encoding="utf-8")) if Path(metrics).is_file() else {}
    bento_model, version = import_champion(tracking, model_name, alias, load_label_schema(labels), metrics_doc)
    bento = build_bento(bento_model.tag, Path(build_config), Path(build_config).resolve().parents[1])
    record = {"bento": str(bento.tag), "model": str(bento_model.tag), "mlflow_model": model_name,
              "mlflow_version": str(version.version), "mlflow_run_id": version.run_id, "alias": alias,
              "bentoml_home": os.environ["BENTOML_HOME"]}
    write_json(bento_out, record)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing package", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--registry", default="models/registry.json")
    parser.add_argument("--metrics", default="metrics/evaluate.json")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--build-config", default="serving/bentofile.yaml")
    parser.add_argument("--bento", default="models/bento.json")
    args = parser.parse_args(argv)
    train = load_params(args.params).train
    record = run(args.registry, args.metrics, args.labels, args.build_config, args.bento,
                 train.model_name, train.alias, os.environ.get("MLFLOW_TRACKING_URI"))
    print(json.dumps(record))
