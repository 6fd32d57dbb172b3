"""Time and peak memory of the ingest, dataset and train stages on synthetic corpora.

    .venv/bin/python -m bench.train.run                       # 1k, 10k, 100k passages
    .venv/bin/python -m bench.train.run --sizes 1000 5000     # other sizes
    .venv/bin/python -m bench.train.run --only-train --blas-threads 1 --tag blas1   # train again, 1 BLAS thread

For each size N: ``bench.train.generate`` writes N unique synthetic passages
(documents of ~10 paragraphs, JSONL) and a Label Studio export with one
annotation per passage into ``bench/out/train/n<N>/`` (not timed), then each
stage runs in its own child process (``bench.train.stage``), so the peak RSS
the parent reads from ``os.wait4`` is that stage's alone:

1. ingest  — pipeline.ingest.run on the documents (params.yaml ``ingest``);
2. dataset — pipeline.dataset.run on passages + the export (params.yaml ``dataset``);
3. train   — pipeline.train.run with a throwaway MLflow store
   (MLFLOW_TRACKING_URI=sqlite:///<workdir>/mlflow-<config>.db), once per train config:
   ``default`` = params.yaml ``train`` as is (8 candidates: 2 baselines + 2 logreg + 2 linear SVM
   + 2 complement NB, word 1-2 + char_wb 3-5 TF-IDF, 4-fold grouped CV, every model logged),
   run for N <= --default-max (10k); ``reduced`` = the same block with word 1-2 TF-IDF only,
   candidates logreg C=1 (+ the 2 baselines, which always run), log_models: best — run at every N.

Wall time is the child's whole life (interpreter start and imports included);
``stage s`` is the ``run`` call alone. Results: a table on stdout,
``bench/out/train_results.json`` and ``bench/out/train_results.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
PARAMS = ROOT / "configs" / "params.yaml"
LABELS = ROOT / "configs" / "labels.yaml"
MIB = 1024 * 1024


def train_configs() -> dict[str, dict]:
    """name → the params.yaml-style ``train:`` mapping the benchmark passes to TrainParams.from_mapping."""
    from pipeline.config import load_params

    default = dict(load_params(PARAMS).extra["train"])
    reduced = copy.deepcopy(default)
    reduced["features"] = {**reduced.get("features", {}), "char_ngram": None}
    reduced["candidates"] = {"logreg": {"grid": {"C": [1.0]}}}
    reduced["log_models"] = "best"
    return {"default": default, "reduced": reduced}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    from importlib.metadata import version

    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": cpu,
            "ram_gib": round(mem_kib / 1024 / 1024, 1), "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": {p: version(p) for p in ("numpy", "scikit-learn", "datasets", "pyarrow", "mlflow")}}


def code_state() -> dict:
    """Commit and a hash of the code and config the stages run (other people commit while a run goes on)."""
    import hashlib

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    h = hashlib.sha256()
    for path in sorted([*(ROOT / "pipeline").rglob("*.py"), PARAMS, LABELS]):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return {"commit": git("rev-parse", "--short", "HEAD"), "pipeline_sha256": h.hexdigest()[:16],
            "dirty": git("status", "--porcelain", "--", "pipeline", "configs").splitlines()}


def busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (/proc/stat: everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_child(spec: dict, workdir: Path, name: str, timeout: float, blas_threads: int | None = None) -> dict:
    """Run one stage in a fresh interpreter; wall clock, CPU and peak RSS from os.wait4.

    ``other_cpu_s`` is the CPU time the rest of the machine used while the stage ran (other
    people's jobs on a shared box): with 2 cores, anything near ``wall_s`` means the stage
    had about one core, and its time is inflated.
    """
    spec_path, result_path, log_path = (workdir / f"{name}.{ext}" for ext in ("spec.json", "result.json", "log"))
    spec_path.write_text(json.dumps(spec, indent=2))
    result_path.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / f'mlflow-{name}.db'}",
           "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0"}
    if blas_threads:
        env.update({v: str(blas_threads) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    with log_path.open("w") as log:
        busy0 = busy_cpu_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bench.train.stage", str(spec_path), str(result_path)],
                                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - t0
        busy = busy_cpu_seconds() - busy0
    proc.returncode = os.waitstatus_to_exitcode(status)
    row = {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
           "cpu_user_s": round(usage.ru_utime, 2), "cpu_sys_s": round(usage.ru_stime, 2),
           "other_cpu_s": round(max(0.0, busy - usage.ru_utime - usage.ru_stime), 1),
           "load_avg_1m_after": round(os.getloadavg()[0], 2),
           "returncode": proc.returncode, "log": str(log_path.relative_to(ROOT))}
    if timed_out.is_set():
        row["status"] = f"timeout after {timeout:.0f} s"
    elif proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        row["status"] = "failed: " + " | ".join(tail)
    else:
        child = json.loads(result_path.read_text())
        row.update(status="ok", stage_s=round(child["stage_seconds"], 2), import_s=round(child["import_seconds"], 2),
                   facts=child["facts"])
    return row


def bench_size(n: int, args, configs: dict[str, dict]) -> tuple[dict, list[dict]]:
    from bench.train.generate import generate

    workdir = OUT / "train" / f"n{n}"
    if args.only_train:
        if not (workdir / "dataset").is_dir():
            raise SystemExit(f"{workdir}: no dataset from an earlier run; run without --only-train first")
        manifest = json.loads((workdir / "manifest.json").read_text())
        gen = {"size": n, "generate_s": None, "manifest": manifest}
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        t0 = time.perf_counter()
        manifest = generate(n, workdir, args.seed)
        gen = {"size": n, "generate_s": round(time.perf_counter() - t0, 2), "manifest": manifest}
    print(f"n={n}: generated {manifest['documents']} documents ({manifest['doc_bytes'] / MIB:.1f} MiB) and "
          f"{manifest['passages']} tasks ({manifest['export_bytes'] / MIB:.1f} MiB export) in {gen['generate_s']} s",
          flush=True)
    base = {"workdir": str(workdir), "seed": args.seed, "params": str(PARAMS), "labels": str(LABELS)}
    plan = [] if args.only_train else [("ingest", None), ("dataset", None)]
    plan += [("train", c) for c in args.train_configs if c != "default" or n <= args.default_max]
    rows = []
    for stage, config in plan:
        spec = {**base, "stage": stage}
        if config:
            spec.update(config_name=config, train_params=configs[config])
        name = f"{stage}-{config}" if config else stage
        if args.profile:
            spec["profile"] = str(workdir / f"{name}.prof")
        row = {"size": n, "stage": stage, "config": config or "", **run_child(spec, workdir, name, args.stage_timeout, args.blas_threads)}
        row["passages_per_s"] = round(n / row["wall_s"], 1)
        rows.append(row)
        print(f"  {name:<14} {row['status']:<4} wall {row['wall_s']:8.2f} s  stage {row.get('stage_s', float('nan')):8.2f} s  "
              f"peak RSS {row['peak_rss_mib']:7.1f} MiB  cpu {row['cpu_user_s'] + row['cpu_sys_s']:8.2f} s  "
              f"others' cpu {row['other_cpu_s']:7.1f} s", flush=True)
        if row["status"] != "ok" and stage != "train":
            break  # later stages need this one's output
    if n == manifest["passages"]:
        ing = next((r for r in rows if r["stage"] == "ingest" and r["status"] == "ok"), None)
        ds = next((r for r in rows if r["stage"] == "dataset" and r["status"] == "ok"), None)
        if ing and ing["facts"]["passages"] != n:
            print(f"  WARNING: ingest produced {ing['facts']['passages']} passages, expected {n}", flush=True)
        if ds and ds["facts"]["examples"] != n:
            print(f"  WARNING: dataset produced {ds['facts']['examples']} examples, expected {n}", flush=True)
    if args.clean:
        for sub in ("docs", "dataset", "dataset_parquet", "mlartifacts"):
            shutil.rmtree(workdir / sub, ignore_errors=True)
    return gen, rows


def growth(rows: list[dict]) -> list[dict]:
    """Per stage/config, between consecutive sizes: time and memory ratios and the log-log slope of time."""
    out = []
    keys = sorted({(r["stage"], r["config"]) for r in rows}, key=lambda k: ("ingest", "dataset", "train").index(k[0]))
    for stage, config in keys:
        ok = sorted((r for r in rows if (r["stage"], r["config"]) == (stage, config) and r["status"] == "ok"),
                    key=lambda r: r["size"])
        for a, b in zip(ok, ok[1:]):
            t_ratio = b["stage_s"] / a["stage_s"] if a["stage_s"] > 0 else float("nan")
            out.append({"stage": stage, "config": config, "from": a["size"], "to": b["size"],
                        "size_ratio": b["size"] / a["size"], "stage_time_ratio": round(t_ratio, 2),
                        "wall_ratio": round(b["wall_s"] / a["wall_s"], 2),
                        "time_exponent": round(math.log(t_ratio) / math.log(b["size"] / a["size"]), 2),
                        "rss_ratio": round(b["peak_rss_mib"] / a["peak_rss_mib"], 2),
                        "rss_delta_mib": round(b["peak_rss_mib"] - a["peak_rss_mib"], 1)})
    return out


def markdown(rows: list[dict], grow: list[dict], gens: list[dict]) -> str:
    lines = ["| passages | stage | train config | wall s | in-stage s | peak RSS MiB | CPU s | others' CPU s | passages/s (wall) | status |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['size']:,} | {r['stage']} | {r['config'] or '–'} | {r['wall_s']:.1f} | "
                     f"{r.get('stage_s', float('nan')):.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['cpu_user_s'] + r['cpu_sys_s']:.1f} | {r['other_cpu_s']:.0f} | {r['passages_per_s']:,.0f} | {r['status']} |")
    lines += ["", "| stage | train config | sizes | in-stage time ratio | exponent (t ∝ n^k) | peak RSS ratio | RSS Δ MiB |",
              "|---|---|---|---:|---:|---:|---:|"]
    for g in grow:
        lines.append(f"| {g['stage']} | {g['config'] or '–'} | {g['from']:,} → {g['to']:,} | {g['stage_time_ratio']} | "
                     f"{g['time_exponent']} | {g['rss_ratio']} | {g['rss_delta_mib']:+.0f} |")
    lines += ["", "| passages | documents | docs MiB | export MiB | generate s (not timed as a stage) |", "|---:|---:|---:|---:|---:|"]
    for g in gens:
        m = g["manifest"]
        lines.append(f"| {g['size']:,} | {m['documents']:,} | {m['doc_bytes'] / MIB:.1f} | {m['export_bytes'] / MIB:.1f} | {g['generate_s'] if g['generate_s'] is not None else '(reused)'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seed", type=int, default=0, help="generator seed (stages use params.yaml's seed)")
    parser.add_argument("--train-configs", nargs="+", default=["reduced", "default"], choices=["reduced", "default"])
    parser.add_argument("--default-max", type=int, default=10000,
                        help="largest size the default (params.yaml) train config runs at")
    parser.add_argument("--stage-timeout", type=float, default=900, help="seconds before a stage is killed")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS/OMP/MKL_NUM_THREADS in the stage processes (default: libraries' own choice)")
    parser.add_argument("--only-train", action="store_true",
                        help="skip generate/ingest/dataset and rerun only train on an existing bench/out/train/n<N>")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile each stage into bench/out/train/n<N>/<stage>.prof (slows Python code down; "
                             "for finding bottlenecks, not for timings)")
    parser.add_argument("--tag", default="", help="results go to bench/out/train_results-<tag>.json/.md")
    parser.add_argument("--clean", action="store_true", help="delete bulky outputs of each size after it ran")
    args = parser.parse_args(argv)

    configs = train_configs()
    info = machine()
    started = dt.datetime.now(dt.timezone.utc)
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, Python {info['python']}", flush=True)
    code = code_state()
    print(f"code: commit {code['commit']}, pipeline+configs sha256 {code['pipeline_sha256']}"
          + (f", uncommitted: {code['dirty']}" if code["dirty"] else ""), flush=True)
    gens, rows = [], []
    for n in args.sizes:
        gen, size_rows = bench_size(n, args, configs)
        now = code_state()
        for r in size_rows:
            r["pipeline_sha256"] = now["pipeline_sha256"]
        if now["pipeline_sha256"] != code["pipeline_sha256"]:
            print(f"WARNING: pipeline/ or configs/ changed during the run (now {now['pipeline_sha256']}, "
                  f"commit {now['commit']}); sizes may have run different code", flush=True)
        gens.append(gen)
        rows.extend(size_rows)
    code_end = code_state()
    grow = growth(rows)
    result = {"date": started.isoformat(timespec="seconds"), "total_s": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1),
              "machine": info, "code_at_start": code, "code_at_end": code_end,
              "code_changed_during_run": code_end["pipeline_sha256"] != code["pipeline_sha256"], "blas_threads": args.blas_threads, "command": "python -m bench.train.run " + " ".join(argv if argv is not None else sys.argv[1:]),
              "train_configs": configs, "generated": gens, "rows": rows, "growth": grow}
    OUT.mkdir(parents=True, exist_ok=True)
    stem = "train_results" + (f"-{args.tag}" if args.tag else "")
    (OUT / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows, grow, gens)
    (OUT / f"{stem}.md").write_text(table)
    print()
    print(table)
    print(f"total {result['total_s']} s; wrote {OUT / (stem + '.json')} and {OUT / (stem + '.md')}")


if __name__ == "__main__":
    main()
