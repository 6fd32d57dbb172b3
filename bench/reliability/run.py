"""Reliability benchmark: what a second worker costs on this machine, and what it buys when a worker dies.

    python -m bench.reliability.run [--duration 10] [--kills 3]

Needs `dvc repro` done (models/bento.json) and Debian's `wrk`. For FRAMING_WORKERS=1 and 2 in
turn, `framing serve` runs the packaged champion on 127.0.0.1 and is measured for: time to
ready; single-text /predict at concurrency 32 with wrk (requests/s, p50/p99); RSS of the server
and its workers; then, ``--kills`` times, four clients call /predict while a worker is killed
with SIGKILL: the longest time no request was answered, the requests that failed, and the log
line naming the death. Writes bench/out/reliability.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.serve.run import lua_script, tree_rss_mib, wrk  # noqa: E402
from tests.servers import free_port, start, stop, wait_http  # noqa: E402

TEXT = "Russia is buying North Korean shells in exchange for oil."


def workers_of(pid: int) -> list[psutil.Process]:
    """The live BentoML workers under ``pid`` (a killed one stays a zombie until the arbiter reaps it)."""
    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:  # gone, or a zombie, between listing and looking
            pass
    return found


def kill_under_load(base: str, server_pid: int, log: Path, settle: float = 15.0) -> dict:
    """Kill one worker while 4 clients call /predict; the longest gap in answers and the failures."""
    done: list[tuple[float, bool]] = []
    stop_at = [time.monotonic() + 120]

    def client():
        session = requests.Session()
        while time.monotonic() < stop_at[0]:
            try:
                ok = session.post(base + "/predict", json={"texts": [TEXT]}, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            done.append((time.monotonic(), ok))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    victim = workers_of(server_pid)[0]
    killed = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    while len(workers_of(server_pid)) < 1 or time.monotonic() - killed < settle:
        time.sleep(0.2)
    stop_at[0] = 0
    for t in threads:
        t.join()
    answered = sorted(t for t, ok in done if ok and t > killed - 1)
    gap = max(b - a for a, b in zip(answered, answered[1:]))
    logged = bool(re.search(rf"pid {victim.pid}\) killed .* by SIGKILL", log.read_text(errors="replace")))
    return {"gap_s": round(gap, 2), "failed": sum(1 for t, ok in done if not ok and t > killed - 1),
            "requests": len(done), "death_logged": logged}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench/out"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench/reliability needs wrk: apt-get install wrk")
    bento = json.loads((ROOT / "models/bento.json").read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-reliability-", dir=out))
    script = work / "single.lua"
    script.write_text(lua_script([json.dumps({"texts": [TEXT]})], "/predict"))
    results = {}
    for n in (1, 2):
        port = free_port()
        log = work / f"serve_w{n}.log"
        env = {**os.environ, "FRAMING_WORKERS": str(n), "BENTOML_HOME": bento["bentoml_home"], "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        proc = start([sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)], env, log, ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/readyz", 120, proc, log)
            ready = time.monotonic() - t0
            while len(workers_of(proc.pid)) < n:
                time.sleep(0.2)
            time.sleep(3)  # every worker up
            load = wrk(base + "/predict", script, 32, args.duration)
            rss = tree_rss_mib(proc.pid)
            kills = [kill_under_load(base, proc.pid, log) for _ in range(args.kills)]
        finally:
            stop(proc)
        results[n] = {"ready_s": round(ready, 1), "rss_mib": round(rss), "req_per_s": round(load["requests"] / (load["duration_us"] / 1e6)),
                      "p50_ms": load["p50_us"] / 1000, "p99_ms": load["p99_us"] / 1000,
                      "errors": load["status_errors"] + load["socket_errors"], "kills": kills}
        print(n, json.dumps(results[n]), flush=True)
    summary = {"date": date.today().isoformat(), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
               "python": platform.python_version(), "bento": bento["bento"], "results": results}
    (out / "reliability.json").write_text(json.dumps(summary, indent=2))
    lines = [f"Date {summary['date']}; {summary['machine']}; Python {summary['python']}; {summary['bento']}; "
             f"wrk {args.duration} s at c=32; {args.kills} kills per setting.", "",
             "| workers | ready s | RSS MiB | req/s c=32 | p50 ms | p99 ms | kill: longest gap s (median, max) | failed requests per kill | death logged |",
             "|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for n, r in results.items():
        gaps = [k["gap_s"] for k in r["kills"]]
        lines.append(f"| {n} | {r['ready_s']} | {r['rss_mib']} | {r['req_per_s']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{statistics.median(gaps):.2f}, {max(gaps):.2f} | {', '.join(str(k['failed']) for k in r['kills'])} | "
                     f"{all(k['death_logged'] for k in r['kills'])} |")
    (out / "reliability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
