"""Learning curve and active-learning simulation on held-out outlets.

    python -m bench.learning_curve.run [--dataset data/dataset] [--draws 3] [--out bench/learning_curve/out]

1. **Learning curve**: train each model family on n = 25, 50, 100, 200, 400 and all annotated
   train+validation passages (``--draws`` random draws of n per size), test on the dataset's test
   split (whole outlets no training or selection step saw). Frames and stance macro-F1 per family.
2. **Active learning vs random order**: from the same random 25 passages, add 25 at a time either
   in the order `framing labelstudio push` would queue them (the current model's least confident
   first, near-duplicates apart: ``pipeline.labelstudio.active``) or at random, retraining the
   champion family each time, up to 400; F1 on the test split at each size.

Thresholds are 0.5 for every family here (tuning them needs CV inside every small draw); the
train stage tunes them, so its own figures are a little higher. Writes ``results.json`` and
``learning_curve.png`` under ``--out``; the table goes into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.candidates import Context, candidate
from pipeline.config import load_params
from pipeline.labelstudio import active
from pipeline.labelstudio.prediction import uncertainty
from pipeline.metrics import bootstrap_interval, frame_metrics, stance_metrics
from pipeline.schema import load_label_schema
from pipeline.training_data import load_data

log = logging.getLogger("bench.learning_curve")
ROOT = Path(__file__).resolve().parents[2]
SIZES = (25, 50, 100, 200, 400)
FAMILIES = {  # one grid point per family: the champion family's and the strongest of the others'
    "linear_mix": dict(C=10.0),
    "logreg (TF-IDF)": None,
    "embed_logreg": dict(C=10.0),
    "embed_prior": dict(C=10.0, prior_weight=0.3),
    "lexicon": None,
}
KIND = {"logreg (TF-IDF)": ("logreg", dict(C=10.0)), "lexicon": ("lexicon", {})}


def make(name: str):
    kind, hp = KIND.get(name, (name, FAMILIES[name]))
    return candidate(kind, **hp)


def frames_f1(Y: np.ndarray, D: np.ndarray) -> float:
    return frame_metrics(Y, D, [str(j) for j in range(Y.shape[1])])["macro_f1"]


def scores(fitted, test) -> tuple[float, float, np.ndarray, np.ndarray]:
    X = fitted.featurizer.transform(test.texts)
    Pf, Ps = fitted.frames_head.predict_proba(X), fitted.stance_head.predict_proba(X)
    return frames_f1(test.Y, Pf >= 0.5), stance_metrics(test.y, Ps)["macro_f1"], Pf, Ps


def outputs_for_queue(fitted, texts: list[str], frame_names, stance_names) -> list[dict]:
    X = fitted.featurizer.transform(texts)
    Pf, Ps = fitted.frames_head.predict_proba(X), fitted.stance_head.predict_proba(X)
    return [{"frames": dict(zip(frame_names, f)), "stance_scores": dict(zip(stance_names, s))} for f, s in zip(Pf, Ps)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT / "data/dataset"))
    parser.add_argument("--embeddings", default=str(ROOT / "models/static_embedding"))
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--al-step", type=int, default=25)
    parser.add_argument("--al-max", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "bench/learning_curve/out"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = load_params(ROOT / "configs/params.yaml")
    schema = load_label_schema(ROOT / "configs/labels.yaml")
    data = load_data(args.dataset)
    tv, test = data.trainval, data.test
    ctx = Context(schema, tuple(data.frame_names), tuple(data.stance_names), params.train.features, params.seed,
                  args.embeddings)
    n_all = len(tv.ids)
    results: dict = {"n_trainval": n_all, "n_test": len(test.ids), "test_outlets": len(set(test.outlets)),
                     "curve": {}, "active_learning": {}}

    def fit(name: str, idx: np.ndarray):
        return make(name).fit([tv.texts[i] for i in idx], tv.Y[idx], tv.y[idx], ctx)

    t0 = time.perf_counter()
    jobs = [(name, n, d) for name in FAMILIES for n in (*SIZES, n_all) for d in range(args.draws if n < n_all else 1)]
    for name, n, draw in tqdm(jobs, desc="learning curve", unit="fit"):
        rng = np.random.default_rng(1000 * draw + n)
        idx = np.sort(rng.choice(n_all, size=min(n, n_all), replace=False))
        f1_frames, f1_stance, Pf, Ps = scores(fit(name, idx), test)
        row = results["curve"].setdefault(name, {}).setdefault(str(n), {"frames": [], "stance": []})
        row["frames"].append(f1_frames)
        row["stance"].append(f1_stance)
        if n == n_all:  # intervals at the full size
            keep = np.flatnonzero(test.y >= 0)
            row["frames_ci95"] = list(bootstrap_interval(lambda i: frames_f1(test.Y[i], Pf[i] >= 0.5), len(test.y),
                                                         params.seed))
            row["stance_ci95"] = list(bootstrap_interval(
                lambda i: stance_metrics(test.y[keep][i], Ps[keep][i])["macro_f1"], len(keep), params.seed))
    results["curve_seconds"] = round(time.perf_counter() - t0, 1)

    clusters = [g for g in tv.groups]  # near-duplicate spreading uses each passage's group as its cluster
    for start in tqdm(range(args.draws), desc="active learning", unit="start"):
        rng = np.random.default_rng(start)
        first = list(rng.choice(n_all, size=args.al_step, replace=False))
        for strategy in ("active", "random"):
            chosen, rng_order = list(first), np.random.default_rng(100 + start)
            curve = []
            while True:
                fitted = fit("linear_mix", np.array(sorted(chosen)))
                f1_frames, f1_stance, _, _ = scores(fitted, test)
                curve.append({"n": len(chosen), "frames": f1_frames, "stance": f1_stance})
                if len(chosen) >= args.al_max:
                    break
                taken = set(chosen)
                pool = [i for i in range(n_all) if i not in taken]
                if strategy == "active":
                    outs = outputs_for_queue(fitted, [tv.texts[i] for i in pool], data.frame_names, data.stance_names)
                    order = active.order([clusters[i] for i in pool], [uncertainty(o) for o in outs])
                    chosen += [pool[k] for k in order[:args.al_step]]
                else:
                    chosen += list(rng_order.choice(pool, size=args.al_step, replace=False))
            results["active_learning"].setdefault(strategy, []).append(curve)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    plot(results, out / "learning_curve.png")
    print(table(results))


def table(results: dict) -> str:
    sizes = sorted({int(n) for rows in results["curve"].values() for n in rows})
    lines = ["| family | " + " | ".join(f"n={n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name, rows in results["curve"].items():
        cells = [f"{np.mean(rows[str(n)]['frames']):.3f} / {np.mean(rows[str(n)]['stance']):.3f}" for n in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| labels | active frames | random frames | active stance | random stance |", "|---|---|---|---|---|"]
    act, rnd = results["active_learning"]["active"], results["active_learning"]["random"]
    for k, point in enumerate(act[0]):
        mean = lambda curves, key: np.mean([c[k][key] for c in curves])  # noqa: E731
        lines.append(f"| {point['n']} | {mean(act, 'frames'):.3f} | {mean(rnd, 'frames'):.3f} | "
                     f"{mean(act, 'stance'):.3f} | {mean(rnd, 'stance'):.3f} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    markers = dict(zip(results["curve"], "osD^v"))
    for name, rows in results["curve"].items():
        sizes = sorted(int(n) for n in rows)
        for ax, task in zip(axes[:2], ("frames", "stance")):
            ax.plot(sizes, [np.mean(rows[str(n)][task]) for n in sizes], marker=markers[name], label=name)
    for ax, task in zip(axes[:2], ("frames", "stance")):
        ax.set(xscale="log", xlabel="annotated passages (log scale)", ylabel=f"{task} macro F1 (held-out outlets)",
               title=f"learning curve: {task}", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    for strategy, style in (("active", "-"), ("random", "--")):
        curves = results["active_learning"][strategy]
        ns = [p["n"] for p in curves[0]]
        for task, marker in (("frames", "o"), ("stance", "s")):
            axes[2].plot(ns, [np.mean([c[k][task] for c in curves]) for k in range(len(ns))], style, marker=marker,
                         label=f"{strategy} order, {task}")
    axes[2].set(xlabel="annotated passages", ylabel="macro F1 (held-out outlets)", ylim=(0, 1),
                title="queue order: active (push) vs random")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
