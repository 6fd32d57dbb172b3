"""`framing report` and `framing monitor` on real predictions: the champion's on the shipped passages,
and the prediction log of a real `framing serve` fed training-like and then deliberately shifted
traffic. The pages are opened in headless Chromium (Debian's /usr/bin/chromium, which
scripts/test.sh installs): every chart drawn, no console errors, nothing fetched, a screenshot kept."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.browser import CHROMIUM, visit
from tests.integration.conftest import serve
from tests.servers import stop

pytestmark = pytest.mark.integration

SHIFTED = [  # short, all-transactional texts: a frame rate and a length the training data never had
    "Russia buys North Korean artillery shells in exchange for oil.",
    "Pyongyang sells munitions to Moscow for cash and grain.",
    "Moscow pays for North Korean ammunition with food and fuel.",
    "North Korea trades missiles for Russian oil and technology.",
]


def framing(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def traffic(packaged, root, built):
    """Logs of one served model: ``calm`` (training passages) and ``shifted`` (SHIFTED), and its /metrics."""
    work = packaged["work"]
    sink = work / "monitor_predictions.jsonl"
    base, proc, _ = serve(packaged, root, "serve_monitor.log", {"FRAMING_PREDICTION_LOG": str(sink), "FRAMING_API_KEY": ""})
    try:
        train = pd.concat([pd.read_parquet(built["parquet"] / f"{s}.parquet") for s in ("train", "validation")])
        texts = train.sample(n=min(300, len(train)), random_state=0)["text"].tolist()
        for i in range(0, len(texts), 16):
            assert requests.post(f"{base}/predict", json={"texts": texts[i:i + 16]}, timeout=30).ok
        calm = work / "calm.jsonl"
        calm.write_bytes(sink.read_bytes())
        before = sink.stat().st_size
        for i in range(60):
            assert requests.post(f"{base}/predict", json={"texts": [SHIFTED[i % 4], SHIFTED[(i + 1) % 4]]}, timeout=30).ok
        shifted = work / "shifted.jsonl"
        shifted.write_bytes(sink.read_bytes()[before:])
        metrics = requests.get(f"{base}/metrics", timeout=10).text
    finally:
        stop(proc)
    return {"calm": calm, "shifted": shifted, "metrics": metrics, "work": work}


def test_monitor_sees_no_drift_in_training_like_traffic(traffic, packaged, root, built):
    out = traffic["work"] / "calm.html"
    done = framing(root, packaged["env"], "monitor", "--log", str(traffic["calm"]), "--out", str(out),
                   "--training-data", str(built["parquet"]))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No drift" in out.read_text() and len(traffic["calm"].read_text().splitlines()) == 300


def test_monitor_flags_shifted_traffic_with_exit_1(traffic, packaged, root, built):
    out = traffic["work"] / "shifted.html"
    done = framing(root, packaged["env"], "monitor", "--log", str(traffic["shifted"]), "--out", str(out),
                   "--training-data", str(built["parquet"]))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "transactional" in done.stderr and "text length" in done.stderr
    assert 'class="note bad"' in out.read_text()


def counter(metrics: str, name: str, label: str, value: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and f'{label}="{value}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_each_label_by_model_version(traffic):
    lines = [json.loads(x) for p in ("calm", "shifted") for x in traffic[p].read_text().splitlines()]
    version = lines[0]["model"]["version"]
    metrics = traffic["metrics"]
    assert counter(metrics, "framing_predictions_total", "model_version", version) == len(lines)
    for frame in lines[0]["frames"]:
        expected = sum(frame in r["decided_frames"] for r in lines)
        assert counter(metrics, "framing_predicted_frame_total", "frame", frame) == expected, frame
        assert re.search(rf'framing_predicted_frame_total{{[^}}]*frame="{frame}"', metrics), frame
    for stance in lines[0]["stance_scores"]:  # every stance has a series, even one never predicted
        assert counter(metrics, "framing_predicted_stance_total", "stance", stance) == sum(r["stance"] == stance for r in lines)
        assert re.search(rf'framing_predicted_stance_total{{[^}}]*stance="{stance}"', metrics), stance


@pytest.fixture(scope="module")
def corpus_predictions(champion, passages, tmp_path_factory) -> Path:
    """The champion's predictions of the shipped passages with their metadata (as `framing score` will give)."""
    path = tmp_path_factory.mktemp("corpus") / "predictions.jsonl"
    outputs = champion.predict([p["text"] for p in passages])
    with path.open("w", encoding="utf-8") as fh:
        for p, o in zip(passages, outputs):
            fh.write(json.dumps({"id": p["id"], "text": p["text"], "date": p.get("date"), **(p.get("meta") or {}), **o},
                                ensure_ascii=False) + "\n")
    return path


def assert_page_works(page: Path, screenshot: Path, min_charts: int) -> None:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: scripts/test.sh installs Debian's chromium package"
    seen = visit(page, screenshot)
    assert len(seen.charts) >= min_charts
    for chart in seen.charts:
        assert chart["marks"] > 0 and chart["width"] > 100 and chart["height"] > 100, chart
    assert seen.console_errors == []
    assert [u for u in seen.requests if not u.startswith("file:")] == []  # works offline
    assert screenshot.stat().st_size > 50_000


def test_report_and_monitor_pages_render_in_chromium(corpus_predictions, traffic, packaged, root, built, tmp_path):
    report = tmp_path / "report.html"
    done = framing(root, packaged["env"], "report", str(corpus_predictions), "--out", str(report),
                   "--training-data", str(built["parquet"]), "--metrics", str(tmp_path / "no-evaluate.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert_page_works(report, tmp_path / "report.png", 10)
    monitor = tmp_path / "monitor.html"
    framing(root, packaged["env"], "monitor", "--log", str(traffic["shifted"]), "--out", str(monitor),
            "--training-data", str(built["parquet"]))
    assert_page_works(monitor, tmp_path / "monitor.png", 7)
