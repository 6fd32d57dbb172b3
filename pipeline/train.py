"""Stage `train`: grouped-CV model selection, threshold tuning, MLflow tracking and registry promotion.

For every candidate (``pipeline.candidates``: family × grid point, plus the always-run baselines
``most_frequent`` and ``lexicon``) on the train+validation rows:

1. grouped CV → out-of-fold (OOF) probabilities (``train.cv``: ``document`` = leave-one-document-out,
   ``fold`` = the dataset stage's grouped folds);
2. per-label frame thresholds tuned on the OOF probabilities (max F1);
3. ``score = w · frames macro F1 (OOF, tuned thresholds) + (1 − w) · stance macro F1 (OOF)``
   with ``w = train.frames_weight``; ties go to the higher stance macro F1, then
   to the earlier candidate (baselines come first, so a model must beat them);
4. refit on all train+validation rows, evaluate on test, log to MLflow (a nested run).

The best candidate is saved to ``candidate``, registered as ``train.model_name`` with the ids
of the passages it trained on and its test predictions, and given the alias ``train.alias``
by ``pipeline.registry.register`` only if it scores at least as well as the alias holder on
the test passages the holder never trained on. ``model`` is then the champion, whichever it is:
what `framing labelstudio push`, `framing predict` and the model card mean by "the model".
The OOF scores are slightly optimistic: thresholds are tuned on the same OOF predictions.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline import registry
from pipeline.candidates import Context, cross_validate, expand
from pipeline.config import TrainParams, load_params
from pipeline.errors import InputError
from pipeline.fsutil import atomic_open, write_json
from pipeline.metrics import paired_gain, split_scores, tune_thresholds
from pipeline.model import FramingModel
from pipeline.schema import LabelSchema, load_label_schema
from pipeline.tracking import experiment_id, flat_metrics, log_framing_model, run_tags, tracking_uri
from pipeline.training_data import Data, check_outlet_folds, document_folds, load_data

log = logging.getLogger(__name__)

# Run ids, model URIs and timings differ between identical runs: they go to MLflow and
# registry_out, never into the cv_report metric.
VOLATILE = ("run_id", "model_uri", "train_seconds")
TRAINING_IDS, TEST_PREDICTIONS = "training_ids.json", "test_predictions.json"  # logged with the best run


def run(dataset: str | Path, labels: str | Path | LabelSchema, model_out: str | Path, cv_report: str | Path,
        registry_out: str | Path, oof_out: str | Path, params: TrainParams, seed: int = 0,
        tracking: str | None = None, embeddings: str | Path | None = None,
        candidate_out: str | Path | None = None) -> dict:
    """Select, refit, save, track and (maybe) promote. Returns the registry summary written to ``registry_out``.

    Writes ``candidate_out`` (this run's best FramingModel; default: beside ``model_out``),
    ``model_out`` (the champion after the promotion decision), ``cv_report`` (per-candidate CV/test
    scores), ``oof_out`` (the best candidate's OOF predictions, JSONL) and ``registry_out``.
    ``tracking`` overrides the MLflow tracking URI; ``embeddings`` is the distill stage's table.
    """
    import mlflow

    schema = labels if isinstance(labels, LabelSchema) else load_label_schema(labels)
    data = load_data(dataset)
    tv, test = data.trainval, data.test
    if params.cv == "document":
        tv.fold = document_folds(tv)
        if len(set(tv.fold.tolist())) < 2:
            raise InputError(f"{dataset}: train+validation passages come from fewer than 2 documents; "
                             "leave-one-document-out needs 2 or more (or set train.cv: fold)")
    elif params.cv == "outlet":
        check_outlet_folds(tv, str(dataset))
    if set(schema.frame_names) != set(data.frame_names) or set(schema.stance_names) != set(data.stance_names):
        log.warning("train: label names in %s differ from the labels file; the lexicon matches cues by key", dataset)
    ctx = Context(schema, tuple(data.frame_names), tuple(data.stance_names), params.features, seed,
                  None if embeddings is None else str(embeddings))
    uri = tracking or tracking_uri()
    mlflow.set_tracking_uri(uri)
    exp_id = experiment_id(mlflow, params.experiment, uri)
    tags = run_tags("train")
    candidates = expand(params.candidates)
    with warnings.catch_warnings():
        # "source can be interpreted in multiple ways" and the integer-column hint: both harmless here.
        warnings.simplefilter("ignore", UserWarning)
        inputs = [(mlflow.data.from_pandas(s.frame(), source=str(Path(dataset).resolve()), name=name), context)
                  for s, name, context in ((tv, "framing-trainval", "training"), (test, "framing-test", "testing"))]
    results, models, oofs = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp, \
            mlflow.start_run(experiment_id=exp_id, run_name="train", tags=tags) as parent:
        mlflow.log_params({"seed": seed, "frames_weight": params.frames_weight, "candidates": len(candidates),
                           "cv": params.cv, "n_trainval": len(tv.ids), "n_test": len(test.ids),
                           "features": json.dumps(asdict(params.features))})
        for ds, context in inputs:
            mlflow.log_input(ds, context=context)
        for cand in tqdm(candidates, desc="train", unit="candidate", disable=None):
            with mlflow.start_run(experiment_id=exp_id, run_name=cand.name, nested=True,
                                  tags={**tags, "kind": cand.kind}) as child:
                t0 = time.perf_counter()
                cv_run = cross_validate(cand, tv.texts, tv.Y, tv.y, tv.fold, ctx, refit=True, n_jobs=params.n_jobs)
                rows, Pf, Ps, fitted = cv_run.rows, cv_run.frames_proba, cv_run.stance_proba, cv_run.refit
                thresholds = tune_thresholds(tv.Y[rows], Pf, params.threshold_grid)
                cv = split_scores(tv.Y[rows], tv.y[rows], Pf, Ps, thresholds, data.frame_names, params.frames_weight)
                model = FramingModel(name=cand.name, schema_version=schema.schema_version,
                                     frame_names=data.frame_names, stance_names=data.stance_names,
                                     display_names={l.key: l.display for l in (*schema.frames, *schema.stance)},
                                     featurizer=fitted.featurizer, frames_head=fitted.frames_head,
                                     stance_head=fitted.stance_head, thresholds=thresholds,
                                     evidence_top_n=params.evidence_top_n,
                                     config={"kind": cand.kind, "hyperparameters": dict(cand.grid_point),
                                             "features": asdict(params.features), "seed": seed})
                seconds = time.perf_counter() - t0
                ts = split_scores(test.Y, test.y, *model.predict_proba(test.texts), model.thresholds,
                                  data.frame_names, params.frames_weight)
                mlflow.log_params({"kind": cand.kind, **{f"hp.{k}": v for k, v in cand.grid_point.items()},
                                   **{f"threshold.{n}": float(t) for n, t in zip(data.frame_names, thresholds)}})
                mlflow.log_metrics({**flat_metrics("cv", cv), **flat_metrics("test", ts), "train_seconds": seconds})
                for ds, context in inputs:
                    mlflow.log_input(ds, context=context)
                info = log_framing_model(mlflow, model, tv.texts, Path(tmp)) if params.log_models == "all" else None
                results.append({"name": cand.name, "kind": cand.kind, "hyperparameters": dict(cand.grid_point),
                                "run_id": child.info.run_id, "model_uri": info.model_uri if info else None,
                                "thresholds": dict(zip(data.frame_names, map(float, thresholds))),
                                "cv": cv, "test": ts, "train_seconds": round(seconds, 3)})
                models[cand.name], oofs[cand.name] = model, (rows, Pf, Ps)
                log.info("train: %-28s cv score %.4f (frames macro F1 %.3f, stance macro F1 %.3f)", cand.name,
                         cv["score"], cv["frames"]["macro_f1"], cv["stance"]["macro_f1"])
        # max() keeps the first of equal keys: ties → higher stance F1 → earlier candidate (baselines first).
        best = max(results, key=lambda r: (round(r["cv"]["score"], 12), round(r["cv"]["stance"]["macro_f1"], 12)))
        model = models[best["name"]]
        versus = _versus_baseline(data, models, oofs, best["name"], seed)
        with mlflow.start_run(run_id=best["run_id"], nested=True):
            if best["model_uri"] is None:
                best["model_uri"] = log_framing_model(mlflow, model, tv.texts, Path(tmp)).model_uri
            # What a later promotion needs to compare fairly with this model, without unpickling it.
            mlflow.log_dict({"ids": sorted(tv.ids)}, TRAINING_IDS)
            mlflow.log_dict(_test_predictions(model, data), TEST_PREDICTIONS)
        model.save(candidate_out or Path(model_out).with_name("candidate.pkl"))
        _write_oof(oof_out, data, *oofs[best["name"]], model.thresholds)
        summary = registry.register(
            uri, params.model_name, params.alias,
            registry.Candidate(best["name"], best["run_id"], best["model_uri"], best["test"]["score"], best["cv"]["score"]),
            lambda holder: _compare(holder, uri, params.model_name, model, data, params.frames_weight),
            enabled=params.register)
        champion = model
        if summary["registered"] and not summary["promoted"] and summary["champion_version"]:
            champion = registry.load_version(uri, params.model_name, summary["champion_version"])
        champion.save(model_out)
        summary.update({"parent_run_id": parent.info.run_id, "experiment_id": exp_id, "tracking_uri": uri,
                        "best_candidate": best["name"], "best_run_id": best["run_id"], "model_uri": best["model_uri"],
                        "candidate_run_ids": {r["name"]: r["run_id"] for r in results},
                        "train_seconds": {r["name"]: r["train_seconds"] for r in results}})
        mlflow.log_metrics({"best.cv.score": best["cv"]["score"], "best.test.score": best["test"]["score"],
                            **{f"best.vs_lexicon.{k}": v for k, v in (versus or {}).items() if k.endswith("_gain")}})
        mlflow.set_tags({"best_candidate": best["name"], "registered_version": str(summary.get("version")),
                         "promoted": str(summary.get("promoted"))})
    write_json(cv_report, {"selection": {"formula": "frames_weight * frames_macro_f1 + (1 - frames_weight) * stance_macro_f1",
                                         "frames_weight": params.frames_weight, "cv": params.cv,
                                         "folds": int(len(set(tv.fold[tv.fold >= 0].tolist()))), "best": best["name"],
                                         "versus_lexicon": versus},
                           "candidates": [{k: v for k, v in r.items() if k not in VOLATILE} for r in results]})
    write_json(registry_out, summary)
    log.info("train: best %s (cv score %.4f, test score %.4f); %s", best["name"], best["cv"]["score"],
             best["test"]["score"], summary["reason"])
    return summary


def _test_predictions(model: FramingModel, data: Data) -> dict:
    """The model's test-split probabilities and thresholds, by passage id (logged with its run)."""
    Pf, Ps = model.predict_proba(data.test.texts)
    return {"frame_names": model.frame_names, "stance_names": model.stance_names,
            "thresholds": model.thresholds.tolist(),
            "passages": {pid: {"frames": f.tolist(), "stance": s.tolist()} for pid, f, s in zip(data.test.ids, Pf, Ps)}}


def _logged(run_id: str, name: str) -> dict | None:
    """A JSON artifact of a run, or None when the run has none (versions registered before it existed)."""
    import mlflow

    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{name}")
    except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
        return None


def _compare(holder, uri: str, model_name: str, candidate: FramingModel, data: Data,
             frames_weight: float) -> registry.Comparison:
    """Champion (``holder``) and candidate on the test passages the champion never trained on.

    The champion predicts now when its format can be loaded; otherwise its logged test predictions
    stand in, on the passages they cover. Raises when no passage is left to compare on.
    """
    t = data.test
    trained = set((_logged(holder.run_id, TRAINING_IDS) or {}).get("ids", ()))
    rows = [i for i, pid in enumerate(t.ids) if pid not in trained]
    how = "re-scored"
    try:
        champion = registry.load_version(uri, model_name, str(holder.version))
        if champion.frame_names != data.frame_names or champion.stance_names != data.stance_names:
            raise InputError("its label names differ from the dataset's")
        Pf, Ps = champion.predict_proba([t.texts[i] for i in rows])
        thresholds = champion.thresholds
    except InputError as exc:
        stored = _logged(holder.run_id, TEST_PREDICTIONS)
        if not stored or stored.get("frame_names") != data.frame_names or stored.get("stance_names") != data.stance_names:
            raise InputError(f"{exc}; and no comparable logged test predictions") from None
        rows = [i for i in rows if t.ids[i] in stored["passages"]]
        Pf = np.array([stored["passages"][t.ids[i]]["frames"] for i in rows]).reshape(len(rows), len(data.frame_names))
        Ps = np.array([stored["passages"][t.ids[i]]["stance"] for i in rows]).reshape(len(rows), len(data.stance_names))
        thresholds, how = np.asarray(stored["thresholds"]), "from its logged test predictions"
    if not rows:
        raise InputError("no test passage that the champion did not train on")
    Y, y = t.Y[rows], t.y[rows]
    mine = candidate.predict_proba([t.texts[i] for i in rows])
    return registry.Comparison(
        champion_score=split_scores(Y, y, Pf, Ps, thresholds, data.frame_names, frames_weight)["score"],
        candidate_score=split_scores(Y, y, *mine, candidate.thresholds, data.frame_names, frames_weight)["score"],
        passages=len(rows), how=how)


def _versus_baseline(data: Data, models: dict, oofs: dict, best: str, seed: int, baseline: str = "lexicon") -> dict | None:
    """The winner's out-of-fold macro-F1 gain over the keyword baseline on the same passages, with
    paired bootstrap intervals: a gain whose interval includes 0 is not distinguishable from noise."""
    if baseline not in models:
        return None

    def decisions(name: str):
        _, Pf, Ps = oofs[name]
        return models[name].decide(Pf), Ps

    rows = oofs[best][0]
    return {"baseline": baseline, **paired_gain(data.trainval.Y[rows], data.trainval.y[rows],
                                                decisions(best), decisions(baseline), seed)}


def _write_oof(path, data: Data, rows, Pf, Ps, thresholds) -> None:
    tv = data.trainval
    with atomic_open(path) as fh:
        for k, i in enumerate(rows):
            fh.write(json.dumps({
                "id": tv.ids[i], "fold": int(tv.fold[i]),
                "frames_true": tv.Y[i].astype(int).tolist(), "frames_proba": [float(p) for p in Pf[k]],
                "frames_pred": (Pf[k] >= thresholds).astype(int).tolist(),
                "stance_true": int(tv.y[i]), "stance_proba": [float(p) for p in Ps[k]],
            }) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing train", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--dataset", default="data/dataset")
    parser.add_argument("--model", default="models/model.pkl", help="the champion after this run's decision")
    parser.add_argument("--candidate", default="models/candidate.pkl", help="this run's best candidate")
    parser.add_argument("--cv-report", default="metrics/cv.json")
    parser.add_argument("--registry", default="models/registry.json")
    parser.add_argument("--oof", default="models/cv_predictions.jsonl")
    parser.add_argument("--embeddings", default=None, help="the distill stage's static embedding folder")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    with warnings.catch_warnings():
        # MLflow's dataset schema hint about integer columns (fold, stance codes): they never hold missing values.
        warnings.filterwarnings("ignore", message=".*integer column.*")
        summary = run(args.dataset, load_label_schema(args.labels), args.model, args.cv_report, args.registry,
                      args.oof, params.train, params.seed, embeddings=args.embeddings, candidate_out=args.candidate)
    print(json.dumps({k: summary[k] for k in ("best_candidate", "version", "promoted", "reason")}))
