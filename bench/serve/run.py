"""Serving benchmark: our BentoML service vs `mlflow models serve` of the same champion.

    python -m bench.serve.run [--duration 10] [--rounds 2]

Needs `dvc repro` done (models/bento.json, the MLflow champion) and Debian's
`wrk` (`apt-get install wrk`). Both servers run on 127.0.0.1, are loaded with the
same request mix in the same run, interleaved round by round (ours, MLflow,
MLflow, ours, ...): single-text requests at concurrency 1, 8, 32 and 64-text
batches at concurrency 8. Reports requests/s, passages/s, p50/p95/p99 latency,
errors, server RSS and time to ready, plus the model's in-process predict rate.
Writes bench/out/serve.json and bench/out/serve.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, start, stop, wait_http  # noqa: E402

SCENARIOS = [("single", 1), ("single", 8), ("single", 32), ("batch64", 8)]

LUA = """
local bodies = {%s}
local n = #bodies
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% n + 1
  return wrk.format(nil, "%s", nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def lua_script(bodies: list[str], path: str) -> str:
    return LUA % (",".join(f"[==[{b}]==]" for b in bodies), path)


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants (BentoML runs workers as children)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wrk(url: str, script: Path, concurrency: int, duration: int) -> dict:
    threads = min(2, concurrency)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration}s", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, timeout=duration + 60)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def in_process_rates(model, texts: list[str]) -> dict:
    rates = {}
    for batch in (1, 32):
        chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)] if batch > 1 else [[t] for t in texts]
        chunks = [c for c in chunks if len(c) == batch] or chunks
        model.predict(chunks[0])
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3:
            for chunk in chunks:
                model.predict(chunk)
                n += len(chunk)
        seconds = time.perf_counter() - start
        rates[f"batch{batch}_passages_per_s"] = n / seconds
        rates[f"batch{batch}_calls_per_s"] = n / batch / seconds
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="FRAMING_WORKERS for our service")
    parser.add_argument("--out", default=str(ROOT / "bench/out"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench/serve needs wrk: apt-get install wrk")
    from pipeline.model import FramingModel

    bento = json.loads((ROOT / "models/bento.json").read_text())
    registry = json.loads((ROOT / "models/registry.json").read_text())
    os.environ.setdefault("BENTOML_HOME", bento["bentoml_home"])
    name, version = bento["model"].split(":")
    model = FramingModel.load(Path(bento["bentoml_home"]) / "models" / name / version / "model.pkl")
    texts = [json.loads(l)["text"] for l in (ROOT / "data/passages.jsonl").read_text().splitlines()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=out))

    batches = [[texts[(i + k) % len(texts)] for k in range(64)] for i in range(len(texts))]
    scripts = {}
    for server, key, path in (("bentoml", "texts", "/predict"), ("mlflow", "inputs", "/invocations")):
        scripts[(server, "single")] = work / f"{server}_single.lua"
        scripts[(server, "single")].write_text(lua_script([json.dumps({key: [t]}) for t in texts], path))
        scripts[(server, "batch64")] = work / f"{server}_batch64.lua"
        scripts[(server, "batch64")].write_text(lua_script([json.dumps({key: b}) for b in batches], path))

    env = {**os.environ, "MLFLOW_TRACKING_URI": registry["tracking_uri"], "PYTHONPATH": str(ROOT),
           "FRAMING_WORKERS": str(args.workers), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    servers = {}
    bin_dir = Path(sys.executable).parent
    try:
        for server in ("bentoml", "mlflow"):
            port = free_port()
            if server == "bentoml":
                cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)]
                ready_path = "/readyz"
            else:
                cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/framing-classifier@champion",
                       "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
                ready_path = "/ping"
            log = work / f"{server}.log"
            t0 = time.monotonic()
            proc = start(cmd, env, log, ROOT)
            servers[server] = {"proc": proc, "url": f"http://127.0.0.1:{port}"}
            wait_http(f"http://127.0.0.1:{port}{ready_path}", 120, proc, log)
            servers[server]["ready_s"] = time.monotonic() - t0
        results: dict = {s: {f"{kind}_c{c}": [] for kind, c in SCENARIOS} for s in servers}
        for rnd in range(args.rounds):
            order = ["bentoml", "mlflow"] if rnd % 2 == 0 else ["mlflow", "bentoml"]
            for kind, conc in SCENARIOS:
                for server in order:
                    r = wrk(servers[server]["url"], scripts[(server, kind)], conc, args.duration)
                    r["rss_mib"] = tree_rss_mib(servers[server]["proc"].pid)
                    results[server][f"{kind}_c{conc}"].append(r)
                    print(server, kind, conc, json.dumps(r), flush=True)
        rates = in_process_rates(model, texts)
        summary = summarise(results, servers, rates, model.name, bento, args)
    finally:
        for s in servers.values():
            stop(s["proc"])
    (out / "serve.json").write_text(json.dumps(summary, indent=2))
    (out / "serve.md").write_text(markdown(summary))
    print(markdown(summary))


def summarise(results: dict, servers: dict, rates: dict, model_name: str, bento: dict, args) -> dict:
    table = {}
    for server, by_scenario in results.items():
        for scenario, runs in by_scenario.items():
            per_req = 64 if scenario.startswith("batch") else 1
            rps = [r["requests"] / (r["duration_us"] / 1e6) for r in runs]
            table.setdefault(server, {})[scenario] = {
                "req_per_s": statistics.mean(rps), "passages_per_s": statistics.mean(rps) * per_req,
                "p50_ms": statistics.mean(r["p50_us"] for r in runs) / 1000,
                "p95_ms": statistics.mean(r["p95_us"] for r in runs) / 1000,
                "p99_ms": statistics.mean(r["p99_us"] for r in runs) / 1000,
                "max_ms": max(r["max_us"] for r in runs) / 1000,
                "errors": sum(r["status_errors"] + r["socket_errors"] for r in runs),
                "rss_mib": max(r["rss_mib"] for r in runs),
            }
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return {"date": date.today().isoformat(), "machine": f"{os.cpu_count()} cores, {cpu}", "python": platform.python_version(),
            "model": model_name, "mlflow_version": bento["mlflow_version"], "duration_s": args.duration,
            "workers": args.workers,
            "rounds": args.rounds, "ready_s": {s: v["ready_s"] for s, v in servers.items()},
            "in_process": rates, "results": table}


def markdown(s: dict) -> str:
    lines = [f"Date {s['date']}; {s['machine']}; Python {s['python']}; model `{s['model']}` (MLflow v{s['mlflow_version']}); "
             f"our service with {s['workers']} worker(s); wrk, {s['duration_s']} s per run, "
             f"{s['rounds']} interleaved rounds (means).", "",
             "| server | scenario | req/s | passages/s | p50 ms | p95 ms | p99 ms | max ms | errors | RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for server, rows in s["results"].items():
        for scenario, r in rows.items():
            lines.append(f"| {server} | {scenario} | {r['req_per_s']:.0f} | {r['passages_per_s']:.0f} | {r['p50_ms']:.1f} | "
                         f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['errors']} | {r['rss_mib']:.0f} |")
    ip = s["in_process"]
    lines += ["", "Time to ready: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["ready_s"].items()) + ".",
              f"In-process `predict`: {ip['batch1_calls_per_s']:.0f} calls/s at batch 1, "
              f"{ip['batch32_passages_per_s']:.0f} passages/s at batch 32 (one core)."]
    ours, theirs = s["results"]["bentoml"], s["results"]["mlflow"]
    lines.append(f"Ratios (ours / MLflow): single c=32 {ours['single_c32']['req_per_s'] / theirs['single_c32']['req_per_s']:.2f}×, "
                 f"batch64 c=8 {ours['batch64_c8']['passages_per_s'] / theirs['batch64_c8']['passages_per_s']:.2f}×.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
