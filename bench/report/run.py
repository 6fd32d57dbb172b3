"""The analyst's report on the shipped corpus, end to end, timed; its screenshot for the README.

    python -m bench.report.run [--out bench/out/report] [--screenshot docs/report.png]

After `dvc repro`: the passages of data/passages.jsonl (text, date and the document metadata) go
through `framing predict --file` (the champion, models/model.pkl), the metadata is joined back by line
(predict keeps the order and passes only the text), and `framing report` renders the page, which
headless Chromium opens and photographs. Until `framing score` exists this is how the corpus gets
predictions; it is a wrapper around the real commands, not a second scorer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def passage_lines(passages: Path, out: Path) -> int:
    """data/passages.jsonl → one flat {"id", "text", "date", **meta} object per line."""
    n = 0
    with passages.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            p = json.loads(line)
            dst.write(json.dumps({"id": p["id"], "text": p["text"], "date": p.get("date"), **(p.get("meta") or {})},
                                 ensure_ascii=False) + "\n")
            n += 1
    return n


def join_metadata(inputs: Path, predictions: Path, out: Path) -> None:
    """Predictions (same order as ``inputs``) with each input's fields added back."""
    with inputs.open(encoding="utf-8") as a, predictions.open(encoding="utf-8") as b, out.open("w", encoding="utf-8") as dst:
        for src, pred in zip(a, b, strict=True):
            record, result = json.loads(src), json.loads(pred)
            if record["text"] != result["text"]:
                raise SystemExit("framing predict changed the order of the passages")
            dst.write(json.dumps({**record, **result}, ensure_ascii=False) + "\n")


def framing(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, check=True,
                   env={**os.environ, "FRAMING_LOG_LEVEL": "WARNING"})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", default="data/passages.jsonl")
    parser.add_argument("--out", default="bench/out/report")
    parser.add_argument("--screenshot", default="docs/report.png")
    parser.add_argument("--metrics", default="metrics/evaluate.json", help="passed to framing report")
    parser.add_argument("--screenshot-height", type=int, default=2300, help="first N pixels of the page")
    args = parser.parse_args(argv)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    n = passage_lines(ROOT / args.passages, out / "passages.jsonl")
    with (out / "raw_predictions.jsonl").open("w") as fh:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "predict", "--file", str(out / "passages.jsonl")],
                       cwd=ROOT, check=True, stdout=fh, env={**os.environ, "FRAMING_LOG_LEVEL": "WARNING"})
        predict_s = time.perf_counter() - started
    join_metadata(out / "passages.jsonl", out / "raw_predictions.jsonl", out / "predictions.jsonl")
    report_s = framing("report", str(out / "predictions.jsonl"), "--out", str(out / "report.html"), "--metrics", args.metrics)

    from tests.browser import visit

    started = time.perf_counter()
    seen = visit(out / "report.html", ROOT / args.screenshot, clip_height=args.screenshot_height)
    open_s = time.perf_counter() - started
    drawn = sum(1 for c in seen.charts if c["marks"] > 0 and c["width"] > 0)
    size_mb = (out / "report.html").stat().st_size / 1e6
    print(f"## Archive report (bench/report)\n\nDate {date.today()}; {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"Python {platform.python_version()}.\n\n| step | value |\n|---|---:|\n"
          f"| passages | {n} |\n| `framing predict --file` (s, incl. start-up) | {predict_s:.1f} |\n"
          f"| `framing report` (s, incl. start-up) | {report_s:.1f} |\n| report size (MB, plotly.js inlined) | {size_mb:.1f} |\n"
          f"| Chromium: load + draw + screenshot (s) | {open_s:.1f} |\n| charts drawn | {drawn}/{len(seen.charts)} |\n"
          f"| console errors | {len(seen.console_errors)} |\n"
          f"| requests other than the file | {sum(not u.startswith('file:') for u in seen.requests)} |")


if __name__ == "__main__":
    main()
