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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_curve

from pipeline.config import EvaluateParams, load_params
from pipeline.errors import InputError
from pipeline.fsutil import atomic_dir, write_json, write_text
from pipeline.metrics import (bootstrap_interval, brier_frames, brier_stance, frame_metrics, reliability,
                              stance_metrics, wilson_interval)

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Truth and predictions of one evaluation set."""

    Y: np.ndarray   # (n, frames) 0/1 truth
    Pf: np.ndarray  # (n, frames) probabilities
    D: np.ndarray   # (n, frames) 0/1 decisions
    y: np.ndarray   # (n,) stance codes
    Ps: np.ndarray  # (n, stances) probabilities


def report(pred: Predictions, frame_names: Sequence[str], stance_names: Sequence[str], reps: int, bins: int,
           seed: int) -> dict:
    """All metrics of one evaluation set, with 95% intervals."""
    n = len(pred.y)
    fm = frame_metrics(pred.Y, pred.D, frame_names)
    sm = stance_metrics(pred.y, pred.Ps)
    s_pred = np.argmax(pred.Ps, axis=1) if n else np.zeros(0, dtype=int)
    correct = int((s_pred == pred.y).sum())
    exact = int((pred.Y == pred.D).all(axis=1).sum())

    def boot(fn):
        lo, hi = bootstrap_interval(fn, n, seed, reps)
        return [round(lo, 4), round(hi, 4)]

    return {
        "n": n,
        "frames": {
            **{k: v for k, v in fm.items() if k != "per_label"},
            "brier": brier_frames(pred.Y, pred.Pf),
            "macro_f1_ci95": boot(lambda i: f1_score(pred.Y[i], pred.D[i], average="macro", zero_division=0.0)),
            "micro_f1_ci95": boot(lambda i: f1_score(pred.Y[i], pred.D[i], average="micro", zero_division=0.0)),
            "subset_accuracy_ci95": [round(v, 4) for v in wilson_interval(exact, n)],
            "per_label": fm["per_label"],
        },
        "stance": {
            **sm,
            "brier": brier_stance(pred.y, pred.Ps),
            "accuracy_ci95": [round(v, 4) for v in wilson_interval(correct, n)],
            "macro_f1_ci95": boot(lambda i: f1_score(pred.y[i], s_pred[i], average="macro", zero_division=0.0)),
            "confusion_matrix": {"labels": list(stance_names),
                                 "matrix": confusion_matrix(pred.y, s_pred, labels=range(len(stance_names))).tolist()},
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
                           np.array([r["stance_proba"] for r in rows], dtype=float))
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
                   [[stance_names[a], stance_names[p]] for a, p in zip(pred.y, s_pred)])
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


# --------------------------------------------------------------------------- model card


def _fmt(v: float, ci: Sequence[float] | None = None) -> str:
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def why_chosen(cv: dict) -> list[str]:
    """The selection in words: the winner against the lexicon baseline and the best of every other kind."""
    by_name = {c["name"]: c for c in cv["candidates"]}
    best = by_name[cv["selection"]["best"]]
    best_of_kind: dict[str, dict] = {}
    for c in cv["candidates"]:
        if c["kind"] != best["kind"] and c["cv"]["score"] > best_of_kind.get(c["kind"], {"cv": {"score": -1}})["cv"]["score"]:
            best_of_kind[c["kind"]] = c

    def scores(c: dict) -> str:
        return (f"score {c['cv']['score']:.3f}: frames macro F1 {c['cv']['frames']['macro_f1']:.3f}, "
                f"stance macro F1 {c['cv']['stance']['macro_f1']:.3f}")

    def fmt(c: dict) -> str:
        return f"`{c['name']}` ({scores(c)})"

    lines = [f"`{best['name']}` has the highest out-of-fold selection score ({scores(best)}); "
             "ties go to the higher stance F1, then to the earlier candidate (baselines first)."]
    versus = cv["selection"].get("versus_lexicon")
    if versus and best["name"] != versus["baseline"]:
        def gain(task: str) -> str:
            lo, hi = versus[f"{task}_ci95"]
            return f"{task} macro F1 {versus[f'{task}_macro_f1_gain']:+.3f} (95% interval {lo:+.3f} to {hi:+.3f})"

        clear = all(versus[f"{task}_ci95"][0] > 0 for task in ("frames", "stance"))
        lines += ["", f"Against the `{versus['baseline']}` keyword baseline on the same {versus['n']} held-out passages "
                  f"(paired bootstrap, {versus['resamples']} resamples): {gain('frames')}, {gain('stance')}. "
                  + ("Both intervals lie above 0: the gain is clear." if clear else
                     "An interval that includes 0 means that gain is not distinguishable from noise at this sample size.")]
    lines += ["", "Best of each other kind, out-of-fold:", ""]
    lines += [f"- {fmt(c)}" for c in sorted(best_of_kind.values(), key=lambda c: -c["cv"]["score"])]
    return lines


def model_card(model, reports: dict[str, dict], counts: dict[str, Any], summary: dict, cv: dict | None) -> str:
    t, o = reports["test"], reports.get("cv")
    selection = (cv or {}).get("selection", {})
    if selection.get("cv") == "document":
        cv_desc = f"leave-one-document-out CV over {selection.get('folds')} source documents"
    else:
        cv_desc = f"grouped {counts['folds']}-fold CV by the `fold` column"
    lines = [
        f"# Model card: {summary.get('model_name')} ({model.name})", "",
        "Generated by `framing evaluate`; do not edit by hand.", "",
        "## Model", "",
        f"- Candidate: `{model.name}` (kind `{model.config.get('kind')}`, hyper-parameters "
        f"`{json.dumps(model.config.get('hyperparameters', {}))}`), label schema version {model.schema_version}.",
        f"- Registry: version {summary.get('version')} of `{summary.get('model_name')}`; promoted to "
        f"`@{summary.get('alias')}`: {summary.get('promoted')} ({summary.get('reason', 'n/a')}).",
        f"- MLflow parent run: `{summary.get('parent_run_id')}`.",
        "- Input: one news passage (raw text; normalised inside the model). Output: probability per frame, "
        "decided frames (probability >= per-label threshold), stance with scores, and evidence n-grams.", "",
        "## Data", "",
        f"- Train+validation passages: {counts['trainval']} ({cv_desc}); "
        f"test passages: {counts['test']} (groups disjoint from training).",
        "- Frame positives (train+validation / test): " + ", ".join(
            f"{k} {counts['frames_trainval'][k]}/{counts['frames_test'][k]}" for k in model.frame_names) + ".",
        "- Stance (train+validation / test): " + ", ".join(
            f"{k} {counts['stance_trainval'][k]}/{counts['stance_test'][k]}" for k in model.stance_names) + ".", "",
        "## Metrics", "",
        "95% intervals in brackets: Wilson for accuracies, bootstrap over passages for F1. "
        "CV figures are out-of-fold with thresholds tuned on the same predictions (slightly optimistic).", "",
        "| metric | test | CV (out-of-fold) |", "|---|---|---|",
    ]
    for name, task, key in [("frames macro F1", "frames", "macro_f1"), ("frames micro F1", "frames", "micro_f1"),
                            ("frames subset accuracy", "frames", "subset_accuracy"),
                            ("frames Hamming loss", "frames", "hamming_loss"), ("frames Brier", "frames", "brier"),
                            ("stance accuracy", "stance", "accuracy"), ("stance macro F1", "stance", "macro_f1"),
                            ("stance Brier", "stance", "brier")]:
        cells = [_fmt(r[task][key], r[task].get(f"{key}_ci95")) if r and r["n"] else "n/a" for r in (t, o)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += ["", "Per-label frame F1 (test): " + ", ".join(
        f"{k} {m['f1']:.3f} (support {m['support']})" for k, m in t["frames"]["per_label"].items()) + ".", "",
        "## Thresholds", "", "Tuned per label on out-of-fold probabilities (maximum F1, middle of any plateau):", ""]
    lines += [f"- `{k}`: {v:.2f}" for k, v in zip(model.frame_names, model.thresholds)]
    if cv:
        lines += ["", "## Why this candidate", "", *why_chosen(cv)]
        lines += ["", "## Candidates (CV)", "", f"Selection score: `{cv['selection']['formula']}` with "
                  f"frames_weight = {cv['selection']['frames_weight']}, on {cv_desc}.", "",
                  "| candidate | CV score | frames macro F1 | stance macro F1 | test score |", "|---|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['cv']['score']:.3f} | {c['cv']['frames']['macro_f1']:.3f} | "
                  f"{c['cv']['stance']['macro_f1']:.3f} | {c['test']['score']:.3f} |" for c in cv["candidates"]]
    lines += ["", "## Intended use and limits", "",
              "- Intended use: assisting analysts in triaging English news passages about the Russia–North Korea "
              "rapprochement by frame and stance; every prediction should be read with its evidence and checked by a person.",
              "- Not for: automated decisions about people or outlets, other topics or languages, or measuring "
              "media bias at scale without re-annotation and re-validation.",
              f"- Sample size: {counts['test']} test passages, so the intervals above are wide; differences between "
              "candidates within those intervals are not meaningful.",
              "- Frames and stance were annotated by few annotators from one label schema; label noise and "
              "annotator bias carry over. Source coverage is a handful of outlets and dates.",
              "- Probabilities are calibrated only as far as the reliability curve shows; thresholds were tuned on "
              "the same small data.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- stage


def run(dataset: str | Path, model_path: str | Path, oof: str | Path, train_summary: str | Path,
        cv_report: str | Path | None, metrics_out: str | Path, plots_dir: str | Path, card_out: str | Path,
        params: EvaluateParams, seed: int = 0, tracking: str | None = None) -> dict:
    """Evaluate ``model_path`` on the test split and the OOF predictions; write metrics, plots, card."""
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
    t = data.test
    Pf, Ps = model.predict_proba(t.texts)
    sets = {"test": Predictions(t.Y, Pf, model.decide(Pf).astype(int), t.y, Ps),
            "cv": load_oof(oof, len(model.frame_names), len(model.stance_names))}
    reports = {k: report(v, model.frame_names, model.stance_names, params.bootstrap_reps, params.reliability_bins, seed)
               for k, v in sets.items()}
    metrics = {"model": model.name, "thresholds": dict(zip(model.frame_names, map(float, model.thresholds))),
               **reports}
    tv = data.trainval
    counts = {"trainval": len(tv.ids), "test": len(t.ids), "folds": len(set(tv.fold[tv.fold >= 0].tolist())),
              "frames_trainval": dict(zip(model.frame_names, map(int, tv.Y.sum(axis=0)))),
              "frames_test": dict(zip(model.frame_names, map(int, t.Y.sum(axis=0)))),
              "stance_trainval": {k: int((tv.y == i).sum()) for i, k in enumerate(model.stance_names)},
              "stance_test": {k: int((t.y == i).sum()) for i, k in enumerate(model.stance_names)}}
    with atomic_dir(plots_dir) as tmp:
        write_plot_data(tmp, sets, reports, model.frame_names, model.stance_names)
        (tmp / "png").mkdir()
        pngs = [p.name for p in write_pngs(tmp / "png", sets, reports, model.frame_names, model.stance_names)]
    write_json(metrics_out, metrics)
    write_text(card_out, model_card(model, reports, counts, summary, cv))
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
    args = parser.parse_args(argv)
    params = load_params(args.params)
    run(args.dataset, args.model, args.oof, args.registry, args.cv_report, args.metrics, args.plots, args.card,
        params.evaluate, params.seed)
