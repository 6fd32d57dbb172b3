"""Reliability tier: the service as an attacker meets it (issue 14), each finding reproduced on a real server.

`framing serve` of the packaged champion on 127.0.0.1, with an API key, as deployed. Each test
is what broke before and the bound that now holds; the figures are printed (`pytest -s`) and
recorded in bench/RESULTS.md. Bounded in time: about two minutes of serving tests on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import threading
import time
import uuid
from collections import Counter

import psutil
import pytest
import requests

from tests import http_load
from tests.integration.conftest import serve
from tests.servers import stop

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KEY = "reliability-key-5d1e"  # a throwaway key for these servers only
AUTH = {"X-API-Key": KEY}
TIMEOUTS = {"FRAMING_BODY_TIMEOUT_S": "5", "FRAMING_HEADER_TIMEOUT_S": "5"}  # defaults are 10 s; 5 s keeps it short
# Smaller than the defaults (20,000 and 256), as the schema says: schemathesis then draws bodies of kilobytes,
# not megabytes, and reaches 5,000 cases in under two minutes.
LIMITS = {"FRAMING_MAX_TEXT_CHARS": "2000", "FRAMING_MAX_BATCH": "16"}


def tree_rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def workers(pid: int) -> list[psutil.Process]:
    """The live BentoML workers under ``pid`` (a killed one stays a zombie until the arbiter reaps it)."""
    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:  # gone, or a zombie, between listing and looking
            pass
    return found


@pytest.fixture(scope="module")
def hardened(packaged, root):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the slow-client test holds 1,100 sockets here
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    base, proc, _ = serve(packaged, root, "serve_reliability.log", {"FRAMING_API_KEY": KEY, **TIMEOUTS, **LIMITS})
    yield {"base": base, "port": int(base.rsplit(":", 1)[1]), "proc": proc,
           "log": packaged["work"] / "serve_reliability.log", **packaged}
    stop(proc)


def _metrics(base: str) -> tuple[bytes, float]:
    start = time.monotonic()
    resp = requests.get(base + "/metrics", headers=AUTH, timeout=30)
    assert resp.status_code == 200
    return resp.content, time.monotonic() - start


# --------------------------------------------------------------------------- 1. /metrics memory


def test_random_paths_do_not_grow_memory_or_metrics(hardened):
    """Was: every distinct path added series, before the key check; 20,000 random 401s took a worker from
    355 MB to 1.82 GB and /metrics to a 504. Now: 50,000 random paths, RSS grows < 50 MB, /metrics stays put."""
    base, port = hardened["base"], hardened["port"]

    def paths(n, with_key):
        for i in range(n):
            path = f"/{uuid.uuid4().hex}/{'x' * (i % 50)}?q={i}"
            yield (http_load.request("GET", path, headers=AUTH) if with_key else
                   http_load.post_json(path, {"texts": ["x"]}) if i % 2 else http_load.request("GET", path))

    http_load.hammer(port, paths(2000, False))  # warm up the allocator and every code path once
    http_load.hammer(port, paths(500, True))
    rss_before = tree_rss_mb(hardened["proc"].pid)
    metrics_before, _ = _metrics(base)
    unauthenticated = http_load.hammer(port, paths(40_000, False), connections=32)
    authenticated = http_load.hammer(port, paths(10_000, True), connections=32)
    rss_after = tree_rss_mb(hardened["proc"].pid)
    metrics_after, seconds = _metrics(base)
    print(f"\n50,000 random paths: {dict(unauthenticated)} unauthenticated, {dict(authenticated)} with the key; "
          f"RSS {rss_before:.0f} → {rss_after:.0f} MB; /metrics {len(metrics_before)} → {len(metrics_after)} bytes "
          f"in {seconds * 1000:.0f} ms")
    assert unauthenticated == Counter({401: 40_000}) and authenticated == Counter({404: 10_000})
    assert rss_after - rss_before < 50
    # a few counters moved, no new series; /metrics answers at once (was: a 504 after 30 s)
    assert len(metrics_after) - len(metrics_before) < 1024 and seconds < 5
    assert b"uuid" not in metrics_after and not re.search(rb'endpoint="/[0-9a-f]{32}', metrics_after)


# --------------------------------------------------------------------------- 2. one bad text, other clients


def test_a_poisoned_client_costs_the_other_clients_nothing(hardened):
    """Was: one client's lone surrogates via /labelstudio/predict made the batch raise and 1,857 other
    /predict calls fail in 10 s. Now: the poison is refused (400) and the others get 0 errors."""
    base = hardened["base"]
    poisons = [
        b'{"tasks": [{"data": {"text": "a lone \\ud800 surrogate"}}]}',
        b'{"tasks": [{"data": {"text": "\\udfff"}}, {"data": {"text": "fine"}}]}',
        b'{"tasks": [{"data": {"text": "raw bytes \xed\xa0\x80 of a surrogate"}}]}',  # not UTF-8
        b'{"tasks": [{"data": "x"}]}',
        b"[" * 10000 + b"]" * 10000,
    ]
    stop_at = time.monotonic() + 8
    outcomes: dict[str, Counter] = {"poison": Counter(), "others": Counter()}
    lock = threading.Lock()

    def poisoner():
        session = requests.Session()
        i = 0
        while time.monotonic() < stop_at:
            resp = session.post(base + "/labelstudio/predict", data=poisons[i % len(poisons)],
                                headers={**AUTH, "content-type": "application/json"}, timeout=30)
            i += 1
            with lock:
                outcomes["poison"][resp.status_code] += 1

    def other(n):
        session = requests.Session()
        while time.monotonic() < stop_at:
            try:
                resp = session.post(base + "/predict", json={"texts": [f"Russia buys shells for oil, call {n}."]},
                                    headers=AUTH, timeout=30)
                ok = resp.status_code == 200 and len(resp.json()["results"]) == 1
                key = 200 if ok else resp.status_code
            except requests.RequestException as exc:
                key = type(exc).__name__
            with lock:
                outcomes["others"][key] += 1

    threads = [threading.Thread(target=poisoner)] + [threading.Thread(target=other, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\npoisoned client: {dict(outcomes['poison'])}; other clients: {dict(outcomes['others'])}")
    assert set(outcomes["poison"]) == {400} and sum(outcomes["poison"].values()) > 50
    assert set(outcomes["others"]) == {200} and outcomes["others"][200] > 100


# --------------------------------------------------------------------------- 3. /labelstudio/* validated


@pytest.mark.parametrize("path, body, status, says", [
    ("/labelstudio/predict", b'{"tasks":[{"data":"x"}]}', 400, '"loc":["tasks",0,"data"]'),  # was a 500
    ("/labelstudio/predict", b"[" * 10000 + b"]" * 10000, 400, "json_invalid"),  # was a 500 (RecursionError)
    ("/labelstudio/predict", b'{"tasks":[{"data":{"text":"\\ud800"}}]}', 400, "Invalid JSON"),  # was a 500
    ("/labelstudio/predict", b'{"tasks":[{"data":{"text":"\\udc00 x"}}]}', 400, "lone"),
    ("/labelstudio/predict", json.dumps({"tasks": [{"data": {"text": "x" * 3_000_000}}]}).encode(), 400,
     "at most 2000 characters"),  # was 1.2 s of the model thread
    ("/labelstudio/predict", json.dumps({"tasks": [{"data": {"text": "  \t"}}]}).encode(), 400, "whitespace"),
    ("/labelstudio/setup", b'{"schema": "' + b"x" * 50_000_000 + b'"}', 413, "over the limit"),  # was accepted
    ("/labelstudio/webhook", b'{"action": "' + b"x" * 50_000_000 + b'"}', 413, "over the limit"),  # was accepted
    ("/labelstudio/webhook", b"[1, 2]", 400, "Input should be an object"),
])
def test_label_studio_routes_are_validated_like_predict(hardened, path, body, status, says):
    resp = requests.post(hardened["base"] + path, data=body, headers={**AUTH, "content-type": "application/json"},
                         timeout=60)
    assert resp.status_code == status and says in resp.text, resp.text[:300]
    assert requests.post(hardened["base"] + path, json={"tasks": [{"data": {"text": "still serving"}}]},
                         headers=AUTH, timeout=30).status_code == 200


# --------------------------------------------------------------------------- 4. slow clients


def _slow_clients(port: int, n: int, head: bytes, rest: bytes, base: str, seconds: float) -> tuple[Counter, Counter]:
    """``n`` connections trickling ``rest`` at 1 byte/s while one client sends normal requests for ``seconds``."""
    normal: Counter = Counter()
    stop_at = time.monotonic() + seconds

    def normal_client():
        session = requests.Session()
        while time.monotonic() < stop_at:
            try:
                normal[session.post(base + "/predict", json={"texts": ["Kim and Putin signed a treaty."]},
                                    headers=AUTH, timeout=10).status_code] += 1
            except requests.RequestException as exc:
                normal[type(exc).__name__] += 1
            time.sleep(0.05)

    async def slow():
        tasks = [http_load.trickle(port, head, rest, 1.0, stop_at + 2) for _ in range(n)]
        return await asyncio.gather(*tasks)

    client = threading.Thread(target=normal_client)
    client.start()
    results = asyncio.run(slow())
    client.join()
    return normal, Counter(what for what, _ in results)


def test_slow_bodies_do_not_lock_normal_clients_out(hardened):
    """Was: 1,100 bodies trickling at 1 byte/s filled the concurrency limit and 97 of 107 normal requests got
    429s. Now: the body must arrive within FRAMING_BODY_TIMEOUT_S (408), and until it has, it holds no place."""
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: " + KEY.encode()
            + b"\r\nContent-Length: 100000\r\n\r\n")
    normal, slow = _slow_clients(hardened["port"], 1100, head, b'{"texts": ["' + b"a" * 99_980, hardened["base"], 9)
    answered = normal[200] / sum(normal.values())
    print(f"\n1,100 slow bodies: normal requests {dict(normal)} ({answered:.1%} answered); slow clients {dict(slow)}")
    assert answered >= 0.99 and normal[200] >= 20  # ~120 on a quiet machine, 64 on a loaded one
    assert slow == Counter({"status 408": 1100})  # each cut off at the deadline, none left open


def test_slow_headers_are_cut_off_and_do_not_lock_normal_clients_out(hardened):
    head = b"POST /predict HTTP/1.1\r\n"
    normal, slow = _slow_clients(hardened["port"], 1100, head, b"Host: x\r\n" * 1000, hardened["base"], 9)
    answered = normal[200] / sum(normal.values())
    print(f"\n1,100 slow headers: normal requests {dict(normal)} ({answered:.1%} answered); slow clients {dict(slow)}")
    assert answered >= 0.99 and normal[200] >= 20
    assert slow == Counter({"closed": 1100})  # closed at FRAMING_HEADER_TIMEOUT_S


# --------------------------------------------------------------------------- 6. rejected requests in the log


def test_each_rejected_request_logs_one_short_line_without_its_body(hardened):
    """Was: a full pydantic traceback (~2.9 KB) per rejected request. Now: one line each, rate-limited."""
    marker = "secret-passage-text-7a2b"
    log = hardened["log"]
    before = log.stat().st_size
    bad = [http_load.post_json("/predict", {"texts": [marker, 3]}, AUTH),
           http_load.post_json("/predict", {"texts": ["   "]}, AUTH),
           http_load.post_json("/predict", b'{"texts": ["' + marker.encode() + b'"', AUTH),
           http_load.post_json("/labelstudio/predict", {"tasks": [{"data": {"text": 1, "x": marker}}]}, AUTH),
           http_load.request("POST", "/predict", marker.encode(), {**AUTH, "Content-Type": "text/plain"}),
           http_load.request("GET", f"/{marker}", headers=AUTH)]
    statuses = http_load.hammer(hardened["port"], (bad[i % len(bad)] for i in range(3000)), connections=8)
    time.sleep(0.5)
    text = log.read_bytes()[before:].decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    print(f"\n3,000 rejected requests {dict(statuses)}: {len(lines)} log lines, {len(text)} bytes")
    assert sum(statuses.values()) == 3000 and all(400 <= s < 500 for s in statuses)
    assert "Traceback" not in text and marker not in text
    assert all(len(line) < 300 for line in lines)
    assert len(lines) < 300 and "more rejections not logged" in text  # rate-limited, and it says so


# --------------------------------------------------------------------------- 9. the published schema


def test_schemathesis_all_checks_on_every_route(hardened, tmp_path):
    """Every route in the spec (Label Studio's included), every check, >= 5,000 cases, 0 failures."""
    import subprocess
    import sys

    spec = requests.get(hardened["base"] + "/docs.json", headers=AUTH, timeout=10).json()
    assert {"/predict", "/metadata", "/labelstudio/predict", "/labelstudio/setup", "/labelstudio/webhook",
            "/labelstudio/health", "/livez", "/readyz", "/metrics"} <= set(spec["paths"])
    report = tmp_path / "schemathesis.json"
    # One worker: hypothesis describes strategies with ast.parse, which races in threads on CPython 3.11.7
    # ("AST constructor recursion depth mismatch", an internal error of the run, not of the service).
    cmd = [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run", hardened["base"] + "/docs.json",
           "--checks", "all", "--max-examples", "1000", "--seed", "14", "--workers", "1", "-H", f"X-API-Key: {KEY}",
           "--report", "json", "--report-json-path", str(report), "--suppress-health-check", "all",
           "--generation-database", "none", "--output-truncate", "true"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(f"\nschemathesis --checks all: {summary['operations']['tested']} operations, {cases['generated']} cases, "
          f"{cases['with_failures']} with failures, {len(summary['errors'])} errors, {summary['running_time']:.0f} s")
    assert done.returncode == 0, done.stdout[-4000:]
    assert summary["operations"]["tested"] == len([m for p in spec["paths"].values() for m in p])
    assert cases["generated"] >= 5000 and cases["with_failures"] == 0 and not summary["errors"]


# --------------------------------------------------------------------------- 5. a worker killed under load


def test_a_killed_worker_is_logged_and_replaced_fast(packaged, root):
    """Was: 12-13 s of downtime, 64 failed requests, nothing in the log. Now: one line with the cause, the
    worker replaced at once (its start-up is the outage), only requests in flight on it fail."""
    base, proc, _ = serve(packaged, root, "serve_kill.log", {"FRAMING_API_KEY": KEY})
    log = packaged["work"] / "serve_kill.log"
    try:
        done: list[tuple[float, bool]] = []
        stop_at = [time.monotonic() + 60]

        def client():
            session = requests.Session()
            while time.monotonic() < stop_at[0]:
                try:
                    ok = session.post(base + "/predict", json={"texts": ["A deal: shells for oil."]}, headers=AUTH,
                                      timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                done.append((time.monotonic(), ok))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        (worker,) = workers(proc.pid)
        killed_at = time.monotonic()
        os.kill(worker.pid, signal.SIGKILL)
        replaced_s = None  # when a new worker process exists (its start-up then takes a few seconds)
        while time.monotonic() - killed_at < 30 and not [t for t, ok in done if ok and t > killed_at + 1]:
            if replaced_s is None and any(w.pid != worker.pid for w in workers(proc.pid)):
                replaced_s = time.monotonic() - killed_at
            time.sleep(0.1)
        stop_at[0] = time.monotonic() + 2
        for t in threads:
            t.join()
        failed = sum(1 for t, ok in done if not ok)
        answered = sorted(t for t, ok in done if ok and t > killed_at - 1)
        recovered = max(b - a for a, b in zip(answered, answered[1:]))  # the longest time nothing was answered
        text = log.read_text()
        print(f"\nworker killed under load: {failed} failed requests of {len(done)}, new worker after "
              f"{replaced_s if replaced_s is None else round(replaced_s, 1)} s, answering again after {recovered:.1f} s")
        assert re.search(rf"worker service \(pid {worker.pid}\) killed .* by SIGKILL; starting a new one", text)
        assert failed <= 8  # the requests in flight on the dead worker, a couple per client at most
        # Before: the arbiter noticed within 10 s, then started a worker; 12-13 s in all. Now the new worker
        # is started at once, and the outage is its start-up (~5 s here, more on a loaded machine).
        assert replaced_s is not None and replaced_s < 3
        assert recovered < 20
    finally:
        stop(proc)
