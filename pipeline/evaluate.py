"""Stage `evaluate`: test-split and CV out-of-fold metrics, DVC plot data, PNGs, model card.

Reads the trained model, the dataset's test split and the OOF predictions the
train stage wrote; writes one metrics JSON (``dvc metrics show``), a plots
folder (CSV for DVC plots + PNGs), and ``MODEL_CARD.md``. When the train
summary names an MLflow parent run, metrics and PNGs are logged to it.

Uncertainty: with tens of test passages a point estimate says little, so every
headline metric carries a 95% interval: Wilson for proportions (accuracy,
subset accuracy), percentile bootstrap over passages for F1 scores.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_curve

from pipeline.config import EvaluateParams, load_params
from pipeline.model_card import model_card
from pipeline.errors import InputError
from pipeline.fsutil import atomic_dir, write_json, write_text
from pipeline.metrics import (bootstrap_interval, brier_frames, brier_stance, frame_metrics, on_topic, paired_gain,
                              reliability, stance_metrics, wilson_interval)

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Truth and predictions of one evaluation set."""

    Y: np.ndarray   # (n, frames) 0/1 truth
    Pf: np.ndarray  # (n, frames) probabilities
    D: np.ndarray   # (n, frames) 0/1 decisions
    y: np.ndarray   # (n,) stance codes
    Ps: np.ndarray  # (n, stances) probabilities
    ids: list[str] = field(default_factory=list)

    def take(self, rows: np.ndarray) -> "Predictions":
        return Predictions(self.Y[rows], self.Pf[rows], self.D[rows], self.y[rows], self.Ps[rows],
                           [self.ids[i] for i in rows] if self.ids else [])


def report(pred: Predictions, frame_names: Sequence[str], stance_names: Sequence[str], reps: int, bins: int,
           seed: int) -> dict:
    """All metrics of one evaluation set, with 95% intervals."""
    n = len(pred.y)
    fm = frame_metrics(pred.Y, pred.D, frame_names)
    sm = stance_metrics(pred.y, pred.Ps)
    # Stance is defined on the on-topic rows only (off-topic passages count for frames, as negatives).
    on = np.flatnonzero(on_topic(pred.y))
    y_on = pred.y[on]
    s_pred = np.argmax(pred.Ps[on], axis=1) if len(on) else np.zeros(0, dtype=int)
    correct = int((s_pred == y_on).sum())
    exact = int((pred.Y == pred.D).all(axis=1).sum())

    def boot(fn, size=n):
        lo, hi = bootstrap_interval(fn, size, seed, reps)
        return [round(lo, 4), round(hi, 4)]

    per_label = {name: {**m, "f1_ci95": boot(lambda i, j=j: f1_score(pred.Y[i, j], pred.D[i, j], zero_division=0.0))}
                 for j, (name, m) in enumerate(fm["per_label"].items())}
    return {
        "n": n,
        "frames": {
            **{k: v for k, v in fm.items() if k != "per_label"},
            "brier": brier_frames(pred.Y, pred.Pf),
            "macro_f1_ci95": boot(lambda i: f1_score(pred.Y[i], pred.D[i], average="macro", zero_division=0.0)),
            "micro_f1_ci95": boot(lambda i: f1_score(pred.Y[i], pred.D[i], average="micro", zero_division=0.0)),
            "subset_accuracy_ci95": [round(v, 4) for v in wilson_interval(exact, n)],
            "per_label": per_label,
        },
        "stance": {
            **sm,
            "brier": brier_stance(pred.y, pred.Ps),
            "n": int(len(on)),
            "accuracy_ci95": [round(v, 4) for v in wilson_interval(correct, len(on))],
            "macro_f1_ci95": boot(lambda i: f1_score(y_on[i], s_pred[i], average="macro", zero_division=0.0), len(on)),
            "confusion_matrix": {"labels": list(stance_names),
                                 "matrix": confusion_matrix(y_on, s_pred, labels=range(len(stance_names))).tolist()},
        },
        "reliability_frames": reliability(pred.Y, pred.Pf, bins),
    }


def load_oof(path: Path, n_frames: int, n_stances: int) -> Predictions:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
    if not rows:
        return Predictions(np.zeros((0, n_frames), int), np.zeros((0, n_frames)), np.zeros((0, n_frames), int),
                           np.zeros(0, int), np.zeros((0, n_stances)))
    try:
        return Predictions(np.array([r["frames_true"] for r in rows], dtype=int),
                           np.array([r["frames_proba"] for r in rows], dtype=float),
                           np.array([r["frames_pred"] for r in rows], dtype=int),
                           np.array([r["stance_true"] for r in rows], dtype=int),
                           np.array([r["stance_proba"] for r in rows], dtype=float),
                           [str(r.get("id", "")) for r in rows])
    except KeyError as exc:
        raise InputError(f"{path}: a line lacks field {exc}") from None


# --------------------------------------------------------------------------- plots


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_plot_data(out: Path, sets: dict[str, Predictions], reports: dict[str, dict], frame_names, stance_names) -> None:
    """CSV files for DVC plots: confusion (actual/predicted rows), PR curves, reliability, per-label F1."""
    for split, pred in sets.items():
        s_pred = np.argmax(pred.Ps, axis=1) if len(pred.y) else []
        _write_csv(out / "confusion" / f"stance_{split}.csv", ["actual", "predicted"],
                   [[stance_names[a], stance_names[p]] for a, p in zip(pred.y, s_pred) if a >= 0])
        for j, label in enumerate(frame_names):
            yes = lambda v: label if v else f"not {label}"  # noqa: E731
            _write_csv(out / "confusion" / f"frame_{label}_{split}.csv", ["actual", "predicted"],
                       [[yes(a), yes(p)] for a, p in zip(pred.Y[:, j], pred.D[:, j])])
            rows = []
            if pred.Y[:, j].any():
                prec, rec, thr = precision_recall_curve(pred.Y[:, j], pred.Pf[:, j])
                rows = [[round(float(r), 6), round(float(p), 6), round(float(t), 6) if k < len(thr) else ""]
                        for k, (p, r, t) in enumerate(zip(prec, rec, list(thr) + [None]))]
            _write_csv(out / "pr" / f"{label}_{split}.csv", ["recall", "precision", "threshold"], rows)
        _write_csv(out / f"reliability_{split}.csv", ["mean_predicted", "fraction_positive", "count", "bin"],
                   [[r["mean_predicted"], r["fraction_positive"], r["count"], r["bin"]]
                    for r in reports[split]["reliability_frames"]])
        _write_csv(out / f"per_label_f1_{split}.csv", ["label", "f1"],
                   [[label, m["f1"]] for label, m in reports[split]["frames"]["per_label"].items()])


def write_pngs(out: Path, sets: dict[str, Predictions], reports: dict[str, dict], frame_names, stance_names) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless; set here, not on import, so importing this module changes nothing
    import matplotlib.pyplot as plt

    paths = []
    for split, pred in sets.items():
        rep = reports[split]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        cm = np.array(rep["stance"]["confusion_matrix"]["matrix"])
        axes[0].imshow(cm, cmap="Blues")
        axes[0].set(xticks=range(len(stance_names)), yticks=range(len(stance_names)), xlabel="predicted",
                    ylabel="actual", title=f"stance confusion ({split})")
        axes[0].set_xticklabels(stance_names, rotation=30)
        axes[0].set_yticklabels(stance_names)
        for (a, b), v in np.ndenumerate(cm):
            axes[0].text(b, a, str(v), ha="center", va="center")
        for j, label in enumerate(frame_names):
            if pred.Y[:, j].any():
                prec, rec, _ = precision_recall_curve(pred.Y[:, j], pred.Pf[:, j])
                axes[1].step(rec, prec, where="post", label=label)
        axes[1].set(xlabel="recall", ylabel="precision", title=f"frame PR curves ({split})", xlim=(0, 1), ylim=(0, 1.05))
        axes[1].legend(fontsize=8)
        rel = rep["reliability_frames"]
        axes[2].plot([0, 1], [0, 1], "--", color="grey")
        axes[2].plot([r["mean_predicted"] for r in rel], [r["fraction_positive"] for r in rel], "o-")
        axes[2].set(xlabel="mean predicted", ylabel="fraction positive", title=f"frame reliability ({split})")
        fig.tight_layout()
        path = out / f"evaluation_{split}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / max(len(sets), 1)
    for k, split in enumerate(sets):
        f1s = [reports[split]["frames"]["per_label"][l]["f1"] for l in frame_names]
        ax.barh(np.arange(len(frame_names)) + k * width, f1s, height=width, label=split)
    ax.set(yticks=np.arange(len(frame_names)) + width * (len(sets) - 1) / 2, xlabel="F1", xlim=(0, 1),
           title="per-label frame F1")
    ax.set_yticklabels(frame_names)
    ax.legend()
    fig.tight_layout()
    path = out / "per_label_f1.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return paths + [path]


# --------------------------------------------------------------------------- stage


def slice_report(pred: Predictions, key_of: dict[str, str]) -> dict[str, dict]:
    """Frames and stance macro F1 per slice (e.g. outlet type) of one evaluation set, with its size."""
    out: dict[str, dict] = {}
    keys = [key_of.get(i, "") for i in pred.ids]
    for key in sorted(set(keys)):
        rows = np.flatnonzero(np.array(keys) == key)
        part = pred.take(rows)
        out[key] = {"n": int(len(rows)),
                    "frames_macro_f1": float(f1_score(part.Y, part.D, average="macro", zero_division=0.0)),
                    "stance_macro_f1": stance_metrics(part.y, part.Ps)["macro_f1"]}
    return out


def lexicon_versus(model, data, labels: str | Path, seed: int, reps: int) -> dict:
    """The champion's macro-F1 gain over the keyword lexicon on the test split (paired bootstrap)."""
    from pipeline.candidates import Context, candidate
    from pipeline.config import FeatureParams
    from pipeline.schema import load_label_schema

    tv, t = data.trainval, data.test
    ctx = Context(load_label_schema(labels), tuple(data.frame_names), tuple(data.stance_names), FeatureParams(), seed)
    lexicon = candidate("lexicon").fit(tv.texts, tv.Y, tv.y, ctx)
    X = lexicon.featurizer.transform(t.texts)
    Lf, Ls = lexicon.frames_head.predict_proba(X), lexicon.stance_head.predict_proba(X)
    Pf, Ps = model.predict_proba(t.texts)
    return {"baseline": "lexicon", **paired_gain(t.Y, t.y, (model.decide(Pf), Ps), (Lf >= model.thresholds, Ls), seed, reps)}


def run(dataset: str | Path, model_path: str | Path, oof: str | Path, train_summary: str | Path,
        cv_report: str | Path | None, metrics_out: str | Path, plots_dir: str | Path, card_out: str | Path,
        params: EvaluateParams, seed: int = 0, tracking: str | None = None, labels: str | Path | None = None) -> dict:
    """Evaluate the champion ``model_path`` on the test split (held-out outlets) and the candidate's OOF
    predictions; slices by outlet type; against the lexicon (with ``labels``); write metrics, plots, card."""
    from pipeline.model import FramingModel
    from pipeline.training_data import load_data

    model_path, oof, train_summary = Path(model_path), Path(oof), Path(train_summary)
    for p in (model_path, oof, train_summary):
        if not p.is_file():
            raise InputError(f"{p}: not found (run the train stage first)")
    model = FramingModel.load(model_path)
    data = load_data(dataset)
    if model.frame_names != data.frame_names or model.stance_names != data.stance_names:
        raise InputError(f"{model_path}: label names {model.frame_names}/{model.stance_names} differ from "
                         f"{dataset}'s {data.frame_names}/{data.stance_names}; retrain")
    summary = json.loads(train_summary.read_text(encoding="utf-8"))
    cv = json.loads(Path(cv_report).read_text(encoding="utf-8")) if cv_report and Path(cv_report).is_file() else None
    t, tv = data.test, data.trainval
    Pf, Ps = model.predict_proba(t.texts)
    sets = {"test": Predictions(t.Y, Pf, model.decide(Pf).astype(int), t.y, Ps, list(t.ids)),
            "cv": load_oof(oof, len(model.frame_names), len(model.stance_names))}
    reports = {k: report(v, model.frame_names, model.stance_names, params.bootstrap_reps, params.reliability_bins, seed)
               for k, v in sets.items()}
    outlet_type = dict(zip(tv.ids + t.ids, tv.outlet_types + t.outlet_types))
    metrics = {"model": model.name, "thresholds": dict(zip(model.frame_names, map(float, model.thresholds))),
               **reports, "slices": {k: slice_report(v, outlet_type) for k, v in sets.items()}}
    versus = {}
    if labels is not None and len(t.ids):
        versus["test"] = lexicon_versus(model, data, labels, seed, params.bootstrap_reps)
    if cv and (cv.get("selection") or {}).get("versus_lexicon"):
        versus["cv"] = cv["selection"]["versus_lexicon"]
    metrics["versus_lexicon"] = versus
    counts = {"trainval": len(tv.ids), "test": len(t.ids), "folds": len(set(tv.fold[tv.fold >= 0].tolist())),
              "outlets_trainval": len(set(tv.outlets)), "outlets_test": len(set(t.outlets)),
              "types_trainval": len(set(tv.outlet_types)), "test_outlets": sorted(set(t.outlets)),
              "frames_trainval": dict(zip(model.frame_names, map(int, tv.Y.sum(axis=0)))),
              "frames_test": dict(zip(model.frame_names, map(int, t.Y.sum(axis=0)))),
              "stance_trainval": {k: int((tv.y == i).sum()) for i, k in enumerate(model.stance_names)},
              "stance_test": {k: int((t.y == i).sum()) for i, k in enumerate(model.stance_names)},
              "off_topic_trainval": int((tv.y < 0).sum()), "off_topic_test": int((t.y < 0).sum())}
    with atomic_dir(plots_dir) as tmp:
        write_plot_data(tmp, sets, reports, model.frame_names, model.stance_names)
        (tmp / "png").mkdir()
        pngs = [p.name for p in write_pngs(tmp / "png", sets, reports, model.frame_names, model.stance_names)]
    write_json(metrics_out, metrics)
    write_text(card_out, model_card(model, metrics, counts, summary, cv))
    run_id = summary.get("parent_run_id")
    if params.log_to_mlflow and run_id:
        _log_to_mlflow(tracking or summary.get("tracking_uri"), run_id, reports, Path(plots_dir), Path(card_out))
    log.info("evaluate: test frames macro F1 %.3f %s, stance macro F1 %.3f %s (n=%d); %d PNGs",
             reports["test"]["frames"]["macro_f1"], reports["test"]["frames"]["macro_f1_ci95"],
             reports["test"]["stance"]["macro_f1"], reports["test"]["stance"]["macro_f1_ci95"], len(t.ids), len(pngs))
    return metrics


def _log_to_mlflow(uri: str, run_id: str, reports: dict, plots_dir: Path, card: Path) -> None:
    """Metrics, PNGs and the card go to the train stage's parent run, so one run holds the whole story."""
    import mlflow

    from pipeline.tracking import flat_metrics

    client = mlflow.MlflowClient(tracking_uri=uri)
    flat = {k: v for split, rep in reports.items() for k, v in flat_metrics(f"eval.{split}", rep).items()}
    for k, v in sorted(flat.items()):
        client.log_metric(run_id, k, v)
    client.log_artifacts(run_id, str(plots_dir / "png"), artifact_path="evaluation")
    client.log_artifact(run_id, str(card), artifact_path="evaluation")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--dataset", default="data/dataset")
    parser.add_argument("--model", default="models/model.pkl")
    parser.add_argument("--oof", default="models/cv_predictions.jsonl")
    parser.add_argument("--registry", default="models/registry.json", help="train summary (MLflow run ids)")
    parser.add_argument("--cv-report", default="metrics/cv.json")
    parser.add_argument("--metrics", default="metrics/evaluate.json")
    parser.add_argument("--plots", default="plots")
    parser.add_argument("--card", default="models/MODEL_CARD.md")
    parser.add_argument("--labels", default="configs/labels.yaml", help="for the lexicon baseline on the test split")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    run(args.dataset, args.model, args.oof, args.registry, args.cv_report, args.metrics, args.plots, args.card,
        params.evaluate, params.seed, labels=args.labels)
