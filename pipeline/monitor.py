"""`framing monitor`: is the served model drifting from what it was trained on? One static HTML page.

    framing monitor --log predictions.log.jsonl --out monitor.html

Reads the serving prediction log (``FRAMING_PREDICTION_LOG``) and the champion's training data
(``--training-data``, the dataset stage's parquet) and charts per-label predicted rates over time
against training prevalence, score and confidence distributions, the share of low-confidence
predictions, text lengths and requests per model version. The population stability index of each
frame, of the stance and of the text length (``pipeline.drift``) is compared with
``monitor.drift_threshold`` in configs/params.yaml.

Exit status: 0 no drift (or too few predictions to judge), 1 drift on at least one label or on
text length (the page is still written), 2 bad input (nothing written). Cron or CI can alert on 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from pipeline import aggregate as agg
from pipeline import charts
from pipeline.config import MonitorParams
from pipeline.drift import Drift, drift_table
from pipeline.htmlpage import Page, table
from pipeline.predictions import read_log
from pipeline.reference import load_reference
from pipeline.schema import load_label_schema

log = logging.getLogger(__name__)

UNITS = ("minute", "hour", "day", "week", "month")
EXIT_DRIFT = 1


def _verdict(page: Page, rows: list[Drift], params: MonitorParams, n: int, display) -> list[str]:
    drifted = [r.quantity for r in rows if r.drifted]
    if any(r.drifted is None for r in rows):
        page.note(f"Only {n} predictions logged (fewer than monitor.min_predictions = {params.min_predictions}): "
                  "drift is shown but not judged.", "warn")
    elif drifted:
        page.note(f"Drift: {', '.join(display.get(q, q) for q in drifted)} "
                  f"{'exceeds' if len(drifted) == 1 else 'exceed'} the PSI threshold {params.drift_threshold} "
                  "(framing monitor exits with status 1).", "bad")
    else:
        page.note(f"No drift: every label and the text length are within PSI {params.drift_threshold} of the "
                  "training data.")
    return drifted


def _drift_section(page: Page, rows: list[Drift], ref, served_chars: pd.Series, params: MonitorParams,
                   display) -> None:
    page.section("Drift per label")
    page.text("Population stability index (PSI) of each label's predicted distribution against the training "
              "data's annotated one, and of the texts' length: below 0.1 stable, 0.1–0.25 moderate, above 0.25 large.")
    status = {True: "DRIFT", False: "ok", None: "not judged"}
    page.figure(charts.psi_bars([(display.get(r.quantity, r.quantity), r.psi, status[r.drifted]) for r in rows],
                                params.drift_threshold, "Population stability index per label"),
                f"PSI per label; the dashed line is monitor.drift_threshold ({params.drift_threshold}). Each bar "
                "says ok, DRIFT or not judged.")
    body = []
    for r in rows:
        exp, obs = sum(r.expected), sum(r.observed)
        if r.kind == "frame":
            shares = (charts.pct(r.expected[0] / exp), charts.pct(r.observed[0] / obs if obs else float("nan")))
        elif r.kind == "stance":
            shares = tuple(" / ".join(charts.pct(v / t if t else float("nan")) for v in vals)
                           for vals, t in ((r.expected, exp), (r.observed, obs)))
        else:
            shares = (f"median {int(pd.Series(ref.lengths).median())}", f"median {int(served_chars.median())}")
        body.append([display.get(r.quantity, r.quantity), r.kind, *shares, f"{r.psi:.3f}", status[r.drifted]])
    page.raw(table(["label", "kind", "training", "served", "PSI", "verdict"], body, numeric=[4],
                   caption="Frames: share given; stance: shares " + " / ".join(display[s] for s in ref.stance_counts)
                           + "; text length: characters."))


def run(log_path: str | Path, out: str | Path, labels: str | Path, training_data: str | Path,
        params: MonitorParams) -> dict:
    """Write the monitoring page for ``log_path`` to ``out`` (atomically); returns the drift verdict
    (``drifted``: labels over the threshold) and the per-label PSI."""
    schema = load_label_schema(labels)
    frames, stances = schema.frame_names, schema.stance_names
    display = {**agg.display_names(schema.frames), **agg.display_names(schema.stance),
               "stance": "Stance", "text length": "Text length", "low": "Low confidence"}
    preds = read_log(log_path, frames, stances)
    ref = load_reference(training_data, frames, stances)
    rows = drift_table(preds, ref, frames, stances, params.drift_threshold, params.min_predictions, params.length_bins)

    n = len(preds)
    first, last = preds["time"].min(), preds["time"].max()
    versions = preds["model_version"].fillna("?").astype(str)
    conf = agg.confidences(preds, frames, stances)
    low = conf < params.low_confidence
    page = Page("Is the served model drifting?",
                f"{n} predictions · {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC · {log_path} · "
                f"compared with {ref.n} training passages")
    page.section("Verdict")
    drifted = _verdict(page, rows, params, n, display)
    page.cards([(str(n), "predictions"), (", ".join(sorted(set(versions))), "model version(s)"),
                (charts.pct(low.mean()), f"low confidence (< {params.low_confidence})"),
                (str(int(preds["chars"].median())), "median text length (chars)")])
    _drift_section(page, rows, ref, preds["chars"], params, display)

    unit = agg.choose_unit(preds["time"], UNITS, params.max_time_buckets)
    data = preds.assign(bucket=agg.bucket(preds["time"], unit).map(lambda t: agg.bucket_label(t, unit)), low=low)
    groups = data[["bucket"]]
    order = [agg.bucket_label(t, unit) for t in agg.all_buckets(data["time"], unit)]
    page.section("Predicted rates over time")
    ft = agg.shares(agg.frame_indicators(data, frames), groups)
    page.figure(charts.panels_over_time(ft, "bucket", frames, display, f"Frames given, per {unit}", 0,
                                        reference={k: ref.frame_rate(k) for k in frames}, order=order),
                f"Share of predictions given each frame per {unit} (95% Wilson intervals); dashed: the frame's "
                "prevalence in the training annotations.")
    st = agg.shares(agg.stance_indicators(data, stances), groups)
    page.figure(charts.panels_over_time(st, "bucket", stances, display, f"Stance, per {unit}", 0,
                                        reference={s: ref.stance_rate(s) for s in stances}, order=order),
                f"Share of predictions of each stance per {unit}; dashed: the training share.")

    page.section("Scores and confidence")
    page.figure(charts.histograms({display[k]: preds[f"frame_{k}"] for k in frames}, "Frame probabilities",
                                  "probability"),
                "Distribution of each frame's predicted probability over all logged predictions.")
    page.figure(charts.histograms({"confidence": conf}, "Prediction confidence", "confidence",
                                  line=params.low_confidence, line_text=f"low below {params.low_confidence}"),
                "Confidence = 1 − mean normalised entropy of the frame and stance decisions (the score Label Studio "
                "shows); left of the dashed line counts as low.")
    lt = agg.shares(data[["low"]], groups)
    page.figure(charts.panels_over_time(lt, "bucket", ["low"], display, f"Low-confidence predictions, per {unit}",
                                        order=order),
                f"Share of predictions per {unit} with confidence below {params.low_confidence}.")

    page.section("Inputs and traffic")
    length = next(r for r in rows if r.kind == "input")
    page.figure(charts.paired_bars(length.bins, {
        "training passages": [v / sum(length.expected) for v in length.expected],
        "served texts": [v / max(sum(length.observed), 1) for v in length.observed]},
        "Text length", "characters (bins: deciles of the training passages)"),
        f"Share of texts per length bin, training vs served (PSI {length.psi:.3f}).")
    counts = data.groupby(["bucket", ("version " + versions).rename("version")]).size().rename("count").reset_index()
    page.figure(charts.stacked_counts(counts, "bucket", "version", f"Requests per {unit} and model version",
                                      "predictions"),
                f"Logged predictions (one per text) per {unit}, by model version.")
    page.write(out)
    result = {"predictions": n, "drifted": drifted, "judged": all(r.drifted is not None for r in rows),
              "psi": {r.quantity: round(r.psi, 4) for r in rows}, "unit": unit, "charts": page.charts}
    log.info("monitor: %d predictions, PSI %s, drifted: %s → %s", n, result["psi"], drifted or "none", out)
    return result


def main(argv: list[str] | None = None) -> None:
    from pipeline.config import load_params

    parser = argparse.ArgumentParser(
        prog="framing monitor", description=__doc__.splitlines()[0],
        epilog="exit status: 0 no drift (or too few predictions to judge), 1 drift, 2 bad input")
    parser.add_argument("--log", required=True, help="the serving prediction log (FRAMING_PREDICTION_LOG), JSONL")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--training-data", default="data/dataset_parquet", help="the dataset stage's parquet folder")
    args = parser.parse_args(argv)
    result = run(args.log, args.out, args.labels, args.training_data, load_params(args.params).monitor)
    if result["drifted"]:
        print(f"framing monitor: drift in {', '.join(result['drifted'])} (PSI {result['psi']}); see {args.out}",
              file=sys.stderr)
        sys.exit(EXIT_DRIFT)
