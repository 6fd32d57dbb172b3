"""Start-up and in-process throughput of the CLI and the model, optionally against another checkout.

    python -m bench.startup.run [--runs 5] [--before /path/to/older/checkout --before-model MODEL]

Each round runs every command once per tree, alternating trees, so a drift in the machine's speed
hits both alike; medians over the rounds are printed as a Markdown table (and saved as JSON under
bench/out/). Timed from outside: whole processes, their imports and model loading included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Russia and North Korea signed a comprehensive strategic partnership treaty in Pyongyang."

# In-process rate: load the model, warm up on one batch, then time predict over 32-passage batches of the
# shipped passages twice: the first pass meets most words for the first time (the tokenizer's chunk cache
# fills, pipeline/model/tokens.py), the second is the steady state of a process that has seen them.
RATE = """
import json, sys, time
from pipeline.model import FramingModel
model = FramingModel.load(sys.argv[1])
texts = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
batches = [texts[i:i + 32] for i in range(0, len(texts), 32)]
model.predict(batches[0]); model.predict(texts[:1])
t = time.perf_counter()
for b in batches:
    model.predict(b)
batch32 = len(texts) / (time.perf_counter() - t)
t = time.perf_counter()
for b in batches:
    model.predict(b)
batch32_warm = len(texts) / (time.perf_counter() - t)
t = time.perf_counter()
for x in texts[:300]:
    model.predict([x])
print(json.dumps({"batch32_passages_s": batch32, "batch32_warm_passages_s": batch32_warm,
                  "batch1_calls_s": 300 / (time.perf_counter() - t)}))
"""


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one run of ``cmd``."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, rusage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=str(ROOT / "models/model.pkl"))
    parser.add_argument("--passages", default=str(ROOT / "data/passages.jsonl"))
    parser.add_argument("--before", help="another checkout of the project (e.g. a git worktree of an older commit)")
    parser.add_argument("--before-model", help="the model file that checkout reads (default: --model)")
    parser.add_argument("--out", default=str(ROOT / "bench/out"))
    args = parser.parse_args(argv)
    trees = {"now": (ROOT, args.model)}
    if args.before:
        trees["before"] = (Path(args.before).resolve(), args.before_model or args.model)
    py = sys.executable
    results: dict = {name: {"help": [], "predict": [], "predict_rss": [], "batch32": [], "batch32_warm": [], "batch1": []} for name in trees}
    for _ in range(args.runs):
        for name, (tree, model) in trees.items():
            # Run in the tree itself: `python -m` and `-c` put the working directory first on sys.path.
            env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1"}
            results[name]["help"].append(_timed([py, "-m", "pipeline.cli", "--help"], env, tree)[0])
            wall, rss = _timed([py, "-m", "pipeline.cli", "predict", "--model", model, TEXT], env, tree)
            results[name]["predict"].append(wall)
            results[name]["predict_rss"].append(rss)
            rate = json.loads(subprocess.run([py, "-c", RATE, model, args.passages], env=env, cwd=tree, capture_output=True,
                                             text=True, check=True).stdout)
            results[name]["batch32"].append(rate["batch32_passages_s"])
            results[name]["batch32_warm"].append(rate["batch32_warm_passages_s"])
            results[name]["batch1"].append(rate["batch1_calls_s"])
    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{stamp}; {os.cpu_count()} cores, {platform.processor() or platform.machine()}; Python "
          f"{platform.python_version()}; medians of {args.runs} interleaved rounds\n")
    print("| tree | `framing --help` s | `framing predict TEXT` s | its peak RSS MiB | batch 32 passages/s, "
          "first pass | batch 32, second pass | batch 1 calls/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m in med.items():
        print(f"| {name} | {m['help']:.2f} | {m['predict']:.2f} | {m['predict_rss']:.0f} | {m['batch32']:,.0f} | "
              f"{m['batch32_warm']:,.0f} | {m['batch1']:,.0f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps({"date": stamp, "runs": results, "medians": med}, indent=2) + "\n")


if __name__ == "__main__":
    main()
