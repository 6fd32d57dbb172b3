"""`framing report`: how is the story framed, by whom, and how has that changed? One static HTML page.

    framing report predictions.jsonl --out report.html      # `framing predict --file` output
    framing report scored/ --out report.html                 # `framing score` output (JSONL or Parquet)

Reads predictions (``pipeline.predictions``), the model's held-out quality (``--metrics``, the
evaluate stage's metrics/evaluate.json, the model card's source) and the training data's coverage
(``--training-data``) and writes one self-contained page: frame prevalence and stance share overall,
over time (by month, or by year for spans over ``report.max_months``), by outlet type and outlet,
with counts and 95% Wilson intervals; frames together and stance within frames; per frame its most
frequent evidence phrases and example passages. Charts work offline (plotly.js is inlined).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from pipeline import aggregate as agg
from pipeline import charts
from pipeline.config import ReportParams
from pipeline.errors import InputError
from pipeline.htmlpage import Page, esc, highlight, table
from pipeline.predictions import read_predictions
from pipeline.schema import load_label_schema

log = logging.getLogger(__name__)


def read_metrics(path: str | Path) -> dict | None:
    """The evaluate stage's metrics (None when the file is absent; InputError when unreadable)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(metrics, dict) or not any(isinstance(metrics.get(k), dict) for k in ("test", "cv")):
        raise InputError(f"{path}: expected the evaluate stage's metrics with 'test' and 'cv' sections")
    return metrics


def _quality(metrics: dict) -> list[tuple[str, str]]:
    cards = []
    for split, what in (("test", "held-out test outlets"), ("cv", "cross-validation, unseen outlets")):
        part = metrics.get(split) or {}
        for task in ("frames", "stance"):
            m = part.get(task) or {}
            if "macro_f1" in m:
                lo, hi = (m.get("macro_f1_ci95") or [float("nan")] * 2)[:2]
                cards.append((f"{m['macro_f1']:.2f} [{lo:.2f}–{hi:.2f}]",
                              f"{task} macro-F1, {what} (n={part.get('n', '?')}, 95% interval)"))
    return cards


def _header(page: Page, preds: pd.DataFrame, metrics: dict | None, metrics_path: Path) -> None:
    names = sorted({n for n in preds["model_name"].dropna()})
    versions = sorted({v for v in preds["model_version"].dropna()})
    who = (", ".join(names) or "not recorded in the predictions") + \
          (f" · version {', '.join(versions)}" if versions else "")
    page.section("Model and data")
    page.raw(f"<p><b>Predictions by:</b> {esc(who)}</p>")
    if len(versions) > 1:
        page.note(f"The predictions come from {len(versions)} model versions ({', '.join(versions)}); "
                  "changes over time may be changes of model.", "warn")
    if metrics is None:
        page.note(f"No held-out quality figures: {metrics_path} was not found (run `dvc repro evaluate`, or pass "
                  "--metrics). Nothing here says how far to trust these predictions.", "bad")
        return
    page.raw(f"<p><b>Quality figures for:</b> {esc(metrics.get('model', '?'))} (from {esc(metrics_path)}; "
             "macro-F1 is the mean over labels of F1, 1.0 is perfect).</p>")
    page.cards(_quality(metrics))
    if names and metrics.get("model") and metrics["model"] not in names:
        page.note(f"The quality figures are for {metrics['model']}, the predictions name {', '.join(names)}: "
                  "check that they describe the same model.", "warn")


def _coverage(page: Page, preds: pd.DataFrame, reference, training_path: Path) -> None:
    n = len(preds)
    if reference is None:
        page.note(f"Training data not found at {training_path}: cannot say whether these outlets and years "
                  "resemble what the model learnt from.", "warn")
        return
    notes = []
    for col, known, what in (("outlet_type", reference.outlet_types, "outlet types"),
                             ("outlet", reference.outlets, "outlets")):
        if col in preds and known:
            values = preds[col].dropna().astype(str)
            unseen = values[~values.isin(known)]
            if len(unseen):
                kinds = sorted(set(unseen))
                notes.append(f"{len(unseen)} of {n} passages ({len(unseen) / n:.0%}) are from {what} the model was "
                             f"not trained on ({', '.join(kinds[:8])}{' …' if len(kinds) > 8 else ''}).")
    years = preds["date"].dt.year.dropna()
    if reference.years and len(years):
        first, last = reference.years
        outside = years[(years < first) | (years > last)]
        if len(outside):
            notes.append(f"{len(outside)} passages ({len(outside) / n:.0%}) are dated outside the training data's "
                         f"years {first}–{last}.")
    for text in notes:
        page.note(text, "warn")
    if notes:
        page.text("The evaluation scores the model on outlets it never saw, but not on unseen outlet types or "
                  "periods: read those parts with more caution.")
    else:
        page.note(f"Outlets and years are within the training data ({reference.n} passages, {reference.source}).")


def _time_sections(page: Page, preds, frames, stances, display, params: ReportParams) -> str | None:
    dated = preds["date"].notna()
    if not dated.any():
        page.note("The predictions carry no dates (no 'date' field): no trends over time.", "info")
        return None
    unit = agg.choose_unit(preds.loc[dated, "date"], ("month", "year"), params.max_months)
    data = preds[dated].copy()
    data["bucket"] = agg.bucket(data["date"], unit).map(lambda t: agg.bucket_label(t, unit))
    page.section("Over time")
    if (~dated).any():
        page.note(f"{int((~dated).sum())} undated passages are left out of the trends.")
    groups = data[["bucket"]]
    order = [agg.bucket_label(t, unit) for t in agg.all_buckets(data["date"], unit)]
    ft = agg.shares(agg.frame_indicators(data, frames), groups)
    page.figure(charts.panels_over_time(ft, "bucket", frames, display, f"Frame prevalence by {unit}", params.thin,
                                        order=order),
                f"Share of passages given each frame, per {unit}, with 95% Wilson intervals; hollow markers mark "
                f"{unit}s with fewer than {params.thin} passages.")
    st = agg.shares(agg.stance_indicators(data, stances), groups)
    buckets = sorted(data["bucket"].unique())
    page.figure(charts.stacked_shares(st, "bucket", buckets, stances, display, f"Stance share by {unit}"),
                f"Stance of the passages per {unit} (n = passages in the {unit}).")
    rows = [[b, int(ft[(ft.bucket == b)]["n"].iloc[0])] + [f"{charts.pct(r.share)} [{charts.pct(r.lo)}–{charts.pct(r.hi)}]"
            for r in ft[ft.bucket == b].itertuples()] for b in buckets]
    page.details(f"Numbers per {unit}", table([unit, "passages", *[display[k] for k in frames]], rows, numeric=[1]))
    if "outlet_type" in data and data["outlet_type"].notna().any():
        options = {}
        types = data.groupby("outlet_type").size().sort_values(ascending=False).index.tolist()
        for keys, indicators in ((frames, agg.frame_indicators(data, frames)), (stances, agg.stance_indicators(data, stances))):
            tab = agg.shares(indicators, data[["outlet_type", "bucket"]])
            for k in keys:
                sub = tab[tab.label == k]
                z = sub.pivot(index="outlet_type", columns="bucket", values="share").reindex(index=types, columns=order)
                n = sub.pivot(index="outlet_type", columns="bucket", values="n").reindex(index=types, columns=order)
                text = z.map(charts.pct).where(n.notna(), "")
                hover = (z.map(charts.pct) + " of " + n.fillna(0).astype(int).astype(str)).where(n.notna(), "none")
                name = display[k] if k in frames else f"stance: {display[k]}"
                options[name] = (z, text, hover)
        page.figure(charts.heatmap_menu(options, f"By outlet type and {unit}", "share"),
                    f"Share of each outlet type's passages per {unit} given the chosen frame or stance (menu at top "
                    "left); empty cells: no passages.")
    return unit


def _breakdown(page: Page, preds, column: str, values: list[str], frames, stances, display, title: str, caption: str) -> None:
    data = preds[preds[column].astype(str).isin(values)]
    groups = data[[column]].astype(str)
    tab = pd.concat([agg.shares(agg.frame_indicators(data, frames), groups),
                     agg.shares(agg.stance_indicators(data, stances), groups)])
    tab["label"] = tab["label"].map(lambda k: display[k] if k in frames else f"stance: {display[k]}")
    cols = [display[k] for k in frames] + [f"stance: {display[s]}" for s in stances]
    z = tab.pivot(index=column, columns="label", values="share").reindex(index=values, columns=cols)
    k = tab.pivot(index=column, columns="label", values="k").reindex(index=values, columns=cols)
    n = tab.pivot(index=column, columns="label", values="n").reindex(index=values, columns=cols)
    label = {v: f"{v} (n={int(n.loc[v].iloc[0])})" for v in values}
    z.index = [label[v] for v in values]
    text = z.map(charts.pct)
    hover = text + " (" + k.astype(int).astype(str).to_numpy() + "/" + n.astype(int).astype(str).to_numpy() + ")"
    page.figure(charts.heatmap(z, text, title, "share", zmax=1, hover=hover), caption)


def _examples(page: Page, preds, frame: str, frames, display, params: ReportParams) -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    phrases = agg.top_phrases(preds, frame, params.top_phrases, frozenset(ENGLISH_STOP_WORDS))
    if phrases:
        page.figure(charts.count_bars(phrases, f"{display[frame]}: most frequent evidence phrases",
                                      frames.index(frame)),
                    f"The phrases the model gave as evidence for {display[frame]} most often (passages citing each); "
                    "phrases of common words only (from, most, other…) are left out.")
    sets = agg.examples(preds, frame, params.examples)
    for key, title in (("confident", "highest confidence"), ("just_in", "borderline, given the frame"),
                       ("just_out", "borderline, not given the frame")):
        if sets[key].empty:
            continue
        blocks = []
        for _, r in sets[key].iterrows():
            meta = [f"score {r[f'frame_{frame}']:.2f}", f"stance {display.get(r['stance'], r['stance'])}"]
            meta += [str(r[c]) for c in ("outlet", "outlet_type") if c in r and isinstance(r[c], str) and r[c]]
            if pd.notna(r["date"]):
                meta.append(r["date"].strftime("%Y-%m-%d"))
            text = r.get("text") if isinstance(r.get("text"), str) else "(no text in the predictions)"
            blocks.append(f'<div class="passage"><div class="meta">{esc(" · ".join(meta))}</div>'
                          f"{highlight(text, (r['evidence'] or {}).get(frame) or [])}</div>")
        page.details(f"{display[frame]}: {title} ({len(blocks)})", "".join(blocks))


def run(predictions: str | Path, out: str | Path, labels: str | Path, metrics: str | Path,
        training_data: str | Path, params: ReportParams) -> dict:
    """Write the report for ``predictions`` to ``out`` (atomically); returns a summary (passages, unit, charts)."""
    from pipeline.reference import load_reference

    schema = load_label_schema(labels)
    frames, stances = schema.frame_names, schema.stance_names
    display = {**agg.display_names(schema.frames), **agg.display_names(schema.stance)}
    preds = read_predictions(predictions, frames, stances)
    metrics_doc = read_metrics(metrics)
    training_data = Path(training_data)
    reference = load_reference(training_data, frames, stances) if training_data.is_dir() else None

    n = len(preds)
    dates = preds["date"].dropna()
    period = f"{dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}" if len(dates) else "undated"
    outlets = preds["outlet"].nunique() if "outlet" in preds else 0
    page = Page(f"How is {schema.target or 'the story'} framed?",
                f"{n} passages · {period}" + (f" · {outlets} outlets" if outlets else "") + f" · {predictions}")
    _header(page, preds, metrics_doc, Path(metrics))
    _coverage(page, preds, reference, training_data)

    page.section("At a glance")
    overall_f = agg.shares(agg.frame_indicators(preds, frames))
    overall_s = agg.shares(agg.stance_indicators(preds, stances))
    no_frame = int((~agg.frame_indicators(preds, frames).any(axis=1)).sum())
    page.cards([(f"{n}", "passages"), *((f"{charts.pct(r.share)}", f"{display[r.label]} ({r.k})")
                                        for r in overall_f.itertuples()), (f"{charts.pct(no_frame / n)}", "no frame")])
    page.raw('<div class="grid2">')
    page.figure(charts.share_bars(overall_f, frames, display, "Frames: share of passages"),
                "Share of all passages given each frame (a passage can have several), with 95% Wilson intervals.")
    page.figure(charts.share_bars(overall_s, stances, display, "Stance: share of passages"),
                "Share of all passages of each stance, with 95% Wilson intervals.")
    page.raw("</div>")

    unit = _time_sections(page, preds, frames, stances, display, params)

    if "outlet_type" in preds and preds["outlet_type"].notna().any():
        page.section("By outlet type")
        types, _ = agg.top_values(preds["outlet_type"], 10_000)
        _breakdown(page, preds, "outlet_type", types, frames, stances, display, "Frames and stance by outlet type",
                   "Share of each outlet type's passages given each frame, and its stance shares (cells print the share).")
    if "outlet" in preds and preds["outlet"].notna().any():
        page.section("By outlet")
        top, rest = agg.top_values(preds["outlet"], params.max_outlets)
        if rest:
            page.note(f"The {len(top)} outlets with most passages are shown; {len(rest)} others are left out.")
        _breakdown(page, preds, "outlet", top, frames, stances, display, "Frames and stance by outlet",
                   "Share of each outlet's passages given each frame, and its stance shares.")

    page.section("Frames together")
    co = agg.cooccurrence(preds, frames)
    diag = pd.Series([co.loc[k, k] for k in frames], index=frames)
    z = co.div(diag.where(diag > 0), axis=0)
    text = co.astype(str) + " (" + z.map(charts.pct) + ")"
    z.index = co.index = text.index = [display[k] for k in frames]
    z.columns = text.columns = [display[k] for k in frames]
    page.figure(charts.heatmap(z, text, "Co-occurrence of frames", "share of row", zmax=1),
                "Passages given both frames (row's frame and column's); in brackets, as a share of the row "
                "frame's passages. The diagonal is each frame's total.")
    within = agg.stance_within_frames(preds, frames, stances)
    groups = [*frames, agg.NO_FRAME]
    page.figure(charts.stacked_shares(within, "frame", groups, stances, display, "Stance within each frame",
                                      group_display=display),
                "Stance shares among the passages given each frame, and among those given none.")

    page.section("Evidence and examples")
    page.text("Per frame: the phrases the model cited as evidence most often, and passages to read: the most "
              "confident, and borderline ones just above and just below the decision threshold (evidence marked).")
    for frame in frames:
        page.heading(display[frame])
        _examples(page, preds, frame, frames, display, params)

    page.section("How to read this")
    page.text("Shares are of passages (paragraphs), not articles. Intervals are 95% Wilson score intervals for a "
              "proportion: wide intervals mean few passages, so a jump in a thin month may be noise. Frames are "
              "multi-label (a passage may have several or none); stance is one of "
              f"{', '.join(display[s] for s in stances)}. These are model predictions, not annotations: "
              "the quality figures at the top say how often the model agrees with annotators on unseen outlets.")
    page.write(out)
    summary = {"passages": n, "unit": unit, "charts": page.charts, "out": str(out)}
    log.info("report: %d passages, %s buckets, %d charts → %s", n, unit or "no time", page.charts, out)
    return summary


def main(argv: list[str] | None = None) -> None:
    from pipeline.config import load_params

    parser = argparse.ArgumentParser(prog="framing report", description=__doc__.splitlines()[0])
    parser.add_argument("predictions", help="JSONL or Parquet file, or a folder of them (framing score / predict output)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--metrics", default="metrics/evaluate.json", help="the model's held-out quality (evaluate stage)")
    parser.add_argument("--training-data", default="data/dataset_parquet", help="the dataset stage's parquet folder")
    args = parser.parse_args(argv)
    run(args.predictions, args.out, args.labels, args.metrics, args.training_data, load_params(args.params).report)
