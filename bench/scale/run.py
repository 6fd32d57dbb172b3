"""Archive scale: ingest and scoring with the local engine and with Spark, on synthetic archives.

    .venv/bin/python -m bench.scale.run                                   # 10k, 100k, 1M passages
    .venv/bin/python -m bench.scale.run --sizes 10000 --master local[2]   # one size
    .venv/bin/python -m bench.scale.run --score-max 200000                # score at most 200k rows per size
    .venv/bin/python -m bench.scale.run --sizes 1000000 --steps ingest --engines local   # 1M: local ingest only

For each size N, ``bench.train.generate`` writes N unique synthetic passages as JSONL documents of
10 paragraphs, 500 documents a file (with 2% near-duplicates and 1% repeated paragraphs), under
``bench/out/scale/n<N>/`` (not timed). Then, each as the user runs it (a ``framing`` command in
its own process):

1. ``framing ingest`` (local) and ``framing ingest --engine spark --master M``: both passages files
   must be byte-identical;
2. ``framing score`` (local, ``--workers`` = the cores) and ``framing score --engine spark`` on the
   ingested passages, with the registry champion (``dvc repro`` first); every row of the two outputs
   is compared. Above ``--score-max`` rows, the first ``--score-max`` passages are scored and the
   full size is extrapolated from the measured rate (the table says so).

Peak RSS is that of the whole process tree (the CLI, Spark's JVM, its Python workers, the pool),
summed, sampled every 0.2 s; ``other_cpu_s`` is CPU the rest of the shared machine used meanwhile.
Results: ``bench/out/scale_results.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
MIB = 1024 * 1024


def tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Bytes resident in ``pid`` and all its descendants; records each one's CPU seconds in ``cpu``."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (children first, so none is re-parented and missed)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def timed(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd``; wall time, CPU of the tree, peak summed RSS, other processes' CPU."""
    from bench.train.run import busy_cpu_seconds

    peak, cpu_seen = [0], {}
    with log.open("w") as fh:
        busy0, t0 = busy_cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "TQDM_DISABLE": "1", **(env or {})})
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], tree_sample(proc.pid, cpu_seen))
                if time.perf_counter() - t0 > timeout:  # the whole tree: a JVM would outlive its CLI
                    kill_tree(proc.pid)
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except BaseException:
            proc.kill()
            raise
        finally:
            stop.set()
        wall = time.perf_counter() - t0
        if wall > timeout:
            code = code or -1
        busy = busy_cpu_seconds() - busy0
    # The tree's CPU: what each process had used when last sampled (a JVM or worker outlives nothing we
    # could wait4), or what wait4 reports for the CLI and the children it reaped, whichever is more.
    cpu = max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values()))
    row = {"wall_s": round(wall, 1), "peak_rss_mib": round(peak[0] / MIB), "cpu_s": round(cpu, 1),
           "other_cpu_s": round(max(0.0, busy - cpu), 1), "returncode": code, "log": str(log.relative_to(ROOT))}
    if code != 0:
        row["error"] = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    return row


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def head(src: Path, dst: Path, n: int) -> None:
    with src.open("rb") as fi, dst.open("wb") as fo:
        for i, line in enumerate(fi):
            if i == n:
                break
            fo.write(line)


def compare(a: Path, b: Path) -> dict:
    """Row-by-row equality of two scored datasets (every column), streamed part by part."""
    import pyarrow.dataset as ds

    left = ds.dataset(a, format="parquet").to_batches()
    right = ds.dataset(b, format="parquet").to_batches()
    rows = differ = 0
    buf_l: list = []
    buf_r: list = []
    for batch in left:
        buf_l += batch.to_pylist()
        while len(buf_r) < len(buf_l):
            nxt = next(right, None)
            if nxt is None:
                break
            buf_r += nxt.to_pylist()
        k = min(len(buf_l), len(buf_r))
        differ += sum(x != y for x, y in zip(buf_l[:k], buf_r[:k]))
        rows += k
        buf_l, buf_r = buf_l[k:], buf_r[k:]
    for batch in right:
        buf_r += batch.to_pylist()
    return {"rows_compared": rows, "rows_differing": differ, "unmatched_rows": len(buf_l) + len(buf_r)}


def predict_rate(passages: Path, n: int = 8192) -> float:
    """In-process FramingModel.predict rate of the registry champion on one core (batches of 2048)."""
    code = f"""
import json, time
from threadpoolctl import threadpool_limits
from pipeline.config import load_params
from pipeline.registry import load_champion
from pipeline.tracking import tracking_uri
t = load_params().train
m = load_champion(tracking_uri(), t.model_name, t.alias)
texts = [json.loads(l)["text"] for _, l in zip(range({n}), open({str(passages)!r}))]
m.predict(texts[:256])
with threadpool_limits(1):
    t0 = time.perf_counter()
    for i in range(0, len(texts), 2048):
        m.predict(texts[i:i + 2048])
    print(len(texts) / (time.perf_counter() - t0))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_size(n: int, args) -> dict:
    from bench.train.generate import generate

    work = OUT / "scale" / f"n{n}"
    work.mkdir(parents=True, exist_ok=True)
    manifest_path = work / "manifest.json"
    if not (manifest_path.is_file() and json.loads(manifest_path.read_text())["passages"] == n):
        print(f"[n={n}] generating …", flush=True)
        generate(n, work, seed=args.seed, annotations=False)
    manifest = json.loads(manifest_path.read_text())
    framing = [sys.executable, "-m", "pipeline.cli"]
    spark = ["--engine", "spark", "--master", args.master]
    result: dict = {"passages": n, "doc_mib": round(manifest["doc_bytes"] / MIB, 1), "runs": {}}

    engines = [(e, x) for e, x in (("local", []), ("spark", spark)) if e in args.engines]
    for engine, extra in engines if "ingest" in args.steps else ():
        out = work / engine
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        print(f"[n={n}] ingest {engine} …", flush=True)
        row = timed([*framing, "ingest", "--input-dir", str(work / "docs"), "--passages", str(out / "passages.jsonl"),
                     "--report", str(out / "ingest.json"), *extra], work / f"ingest-{engine}.log", args.timeout)
        if row["returncode"] == 0:
            row["rows"] = json.loads((out / "ingest.json").read_text())["passages"]
            row["sha256"] = sha256(out / "passages.jsonl")
        result["runs"][f"ingest/{engine}"] = row
        print(f"    {row}", flush=True)
    if all(f"ingest/{e}" in result["runs"] for e in ("local", "spark")):
        result["ingest_identical"] = (result["runs"]["ingest/local"].get("sha256")
                                      == result["runs"]["ingest/spark"].get("sha256"))
    if "score" not in args.steps:
        return finish(result)
    passages = work / args.engines[0] / "passages.jsonl"
    if not passages.is_file():
        raise SystemExit(f"{passages}: no ingested passages to score (run the ingest step first)")
    scored_rows = min(n, args.score_max)
    if scored_rows < n:
        head(passages, work / "score_input.jsonl", scored_rows)
        passages = work / "score_input.jsonl"
    result["scored_rows"] = scored_rows
    for engine, extra in (("local", ["--workers", str(args.workers)]), ("spark", spark)):
        if engine not in args.engines:
            continue
        out = work / engine / "scored"
        shutil.rmtree(out, ignore_errors=True)
        print(f"[n={n}] score {engine} ({scored_rows} rows) …", flush=True)
        row = timed([*framing, "score", str(passages), "--out", str(out), *extra], work / f"score-{engine}.log",
                    args.timeout)
        row["rows"] = scored_rows
        result["runs"][f"score/{engine}"] = row
        print(f"    {row}", flush=True)
    if all(result["runs"].get(f"score/{e}", {}).get("returncode") == 0 for e in ("local", "spark")):
        result["score_comparison"] = compare(work / "local" / "scored", work / "spark" / "scored")
    if args.keep is False:
        for engine in ("local", "spark"):
            shutil.rmtree(work / engine / "scored", ignore_errors=True)
    return finish(result)


def finish(result: dict) -> dict:
    for row in result["runs"].values():
        if row["returncode"] == 0:
            row["rows_per_s"] = round(row["rows"] / row["wall_s"])
    return result


def table(results: list[dict]) -> str:
    lines = ["| passages | step | engine | rows | wall s | rows/s | peak RSS MiB (tree) | CPU s | others' CPU s |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for key, row in r["runs"].items():
            step, engine = key.split("/")
            lines.append(f"| {r['passages']:,} | {step} | {engine} | {row['rows']:,} | {row['wall_s']} | "
                         f"{row.get('rows_per_s', '–'):,} | {row['peak_rss_mib']:,} | {row['cpu_s']} | "
                         f"{row['other_cpu_s']} |" if row["returncode"] == 0 else
                         f"| {r['passages']:,} | {step} | {engine} | – | {row['wall_s']} | failed | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bench.train.run import code_state, machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--steps", nargs="+", choices=("ingest", "score"), default=["ingest", "score"])
    parser.add_argument("--engines", nargs="+", choices=("local", "spark"), default=["local", "spark"])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--score-max", type=int, default=200_000, help="score at most this many rows per size")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command; then its process tree is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scored datasets")
    parser.add_argument("--tag", default="", help="write scale_results-TAG.* instead")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results = []
    for n in args.sizes:
        r = bench_size(n, args)
        if n == args.sizes[0] and "score" in args.steps:
            r["predict_rate_1core"] = round(predict_rate(OUT / "scale" / f"n{n}" / args.engines[0] / "passages.jsonl"))
        results.append(r)
    doc = {"started": started, "machine": machine(), "code": code_state(), "args": vars(args), "results": results}
    suffix = f"-{args.tag}" if args.tag else ""
    (OUT / f"scale_results{suffix}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (OUT / f"scale_results{suffix}.md").write_text(table(results) + "\n")
    print(table(results))
    for r in results:
        print(r["passages"], "ingest identical:", r.get("ingest_identical"), "score:", r.get("score_comparison"))


if __name__ == "__main__":
    main()
