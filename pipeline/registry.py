"""`framing models`: registered versions of the classifier, their aliases and metrics."""

from __future__ import annotations

import argparse
import json
import logging

from pipeline.errors import InputError

log = logging.getLogger(__name__)


def list_versions(tracking: str, model_name: str = "framing-classifier") -> list[dict]:
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
    parser = argparse.ArgumentParser(prog="framing models", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default="framing-classifier")
    parser.add_argument("--json", action="store_true", help="one JSON object per version instead of a table")
    args = parser.parse_args(argv)
    from pipeline.train import tracking_uri

    uri = tracking_uri()
    versions = list_versions(uri, args.model_name)
    if args.json:
        for v in versions:
            print(json.dumps(v))
        return
    print(f"{args.model_name} @ {uri}")
    print(f"{'version':>7}  {'aliases':<12} {'candidate':<28} {'cv.score':>8} {'test.score':>10}  decision")
    for v in versions:
        m = v["metrics"]
        print(f"{v['version']:>7}  {','.join(v['aliases']) or '-':<12} {v['tags'].get('candidate', '?'):<28} "
              f"{m.get('cv.score', float('nan')):>8.4f} {m.get('test.score', float('nan')):>10.4f}  "
              f"{v['tags'].get('decision', '')}")
