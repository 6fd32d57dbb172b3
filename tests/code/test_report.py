"""`framing report` and `framing monitor` through the CLI on synthetic predictions (the browser test
in tests/integration opens the pages): both input shapes, folders, the header, coverage notes, exit
codes, and bad input → a message naming file/line/field, exit 2, no HTML written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main as cli
from tests.prediction_fixtures import as_score_rows, log_lines, passages, prediction, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
LABELS = str(ROOT / "configs/labels.yaml")
FRAMES = ["isolated_pariah", "transactional", "strategic_partnership"]
STANCES = ["critical", "neutral", "supportive"]
METRICS = {"model": "linear_mix[C=30.0]", "test": {"n": 97, "frames": {"macro_f1": 0.7837, "macro_f1_ci95": [0.71, 0.84]},
                                                   "stance": {"macro_f1": 0.7205, "macro_f1_ci95": [0.62, 0.81]}},
           "cv": {"n": 579, "frames": {"macro_f1": 0.7574, "macro_f1_ci95": [0.72, 0.78]},
                  "stance": {"macro_f1": 0.64, "macro_f1_ci95": [0.6, 0.68]}}}


def run_cli(argv, capsys) -> tuple[int, str]:
    try:
        cli(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, built):
    work = tmp_path_factory.mktemp("report")
    rows = passages(300, 2, FRAMES, STANCES, rising="transactional")
    write_jsonl(work / "predict.jsonl", rows)
    scored = work / "scored"
    scored.mkdir()
    flat = pd.DataFrame(as_score_rows(rows))
    flat.iloc[:150].to_parquet(scored / "part-00000.parquet")
    flat.iloc[150:].to_parquet(scored / "part-00001.parquet")
    (scored / "_SUCCESS").write_text("")
    (work / "evaluate.json").write_text(json.dumps(METRICS))
    return {"work": work, "rows": rows, "predict": work / "predict.jsonl", "scored": scored,
            "metrics": work / "evaluate.json", "training": built["parquet"]}


def report(inputs, predictions, out, capsys, *extra) -> tuple[int, str]:
    return run_cli(["report", str(predictions), "--out", str(out), "--metrics", str(inputs["metrics"]),
                    "--training-data", str(inputs["training"]), "--labels", LABELS, *extra], capsys)


def cards(page: str) -> list[str]:
    return re.findall(r'<div class="card"><b>([^<]*)</b><span>([^<]*)</span>', page)


@pytest.fixture(scope="module")
def pages(inputs):
    """The report of the same predictions as `framing predict --file` lines and as `framing score` parquet parts."""
    from pipeline import report as report_module
    from pipeline.config import ReportParams

    out = {}
    for shape in ("predict", "scored"):
        out[shape] = inputs["work"] / f"{shape}.html"
        report_module.run(inputs[shape], out[shape], LABELS, inputs["metrics"], inputs["training"],
                          ReportParams())
    return {k: v.read_text() for k, v in out.items()}


def test_both_shapes_give_the_same_report(inputs, pages):
    pa, pb = pages["predict"], pages["scored"]
    assert cards(pa)[4:] == cards(pb)[4:]  # the same shares; the header differs only in the model named
    given = sum("transactional" in r["decided_frames"] for r in inputs["rows"])
    assert ("{}%".format(round(100 * given / 300)), f"Transactional ({given})") in cards(pa)
    assert "version 7" in pb and "not recorded in the predictions" in pa


def test_report_content(pages):
    page = pages["predict"]
    assert page.count('<figure class="chart"') >= 10
    assert "0.78 [0.71–0.84]" in page and "n=97" in page and "cross-validation" in page
    assert "Frame prevalence by month" in page  # 18 months → monthly
    assert "from outlets the model was not trained on" in page  # synthetic outlets
    assert "dated outside" not in page  # 2023–2024 is within the training years
    for section in ("Over time", "By outlet type", "By outlet", "Frames together", "Evidence and examples"):
        assert f">{section}</h2>" in page
    assert "<mark>" in page  # evidence marked in the example passages
    # Offline: plotly.js is inlined and nothing is loaded from elsewhere.
    assert "Plotly" in page and len(page) > 4_000_000
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']https?:", page)


def test_the_cli_writes_the_page(inputs, capsys, pages):
    out = inputs["work"] / "cli.html"
    assert report(inputs, inputs["predict"], out, capsys) == (0, "")
    assert cards(out.read_text()) == cards(pages["predict"])


def test_missing_metrics_and_training_data_are_said_clearly(inputs, capsys):
    out = inputs["work"] / "bare.html"
    code, _ = run_cli(["report", str(inputs["predict"]), "--out", str(out), "--metrics", str(inputs["work"] / "nope.json"),
                       "--training-data", str(inputs["work"] / "no-data")], capsys)
    page = out.read_text()
    assert code == 0
    assert "No held-out quality figures" in page and "nope.json was not found" in page
    assert "Training data not found" in page


def test_undated_predictions_have_no_trends(inputs, capsys):
    rows = [{k: v for k, v in r.items() if k not in ("date", "year")} for r in inputs["rows"][:40]]
    path = write_jsonl(inputs["work"] / "undated.jsonl", rows)
    out = inputs["work"] / "undated.html"
    assert report(inputs, path, out, capsys)[0] == 0
    page = out.read_text()
    assert "no trends over time" in page and ">Over time</h2>" not in page


def test_a_long_span_is_charted_by_year(inputs, capsys):
    rows = passages(120, 4, FRAMES, STANCES, start="2001-01-01", days=365 * 20)
    out = inputs["work"] / "years.html"
    assert report(inputs, write_jsonl(inputs["work"] / "years.jsonl", rows), out, capsys)[0] == 0
    assert "Frame prevalence by year" in out.read_text()


def lines_with(rows, **change):
    return [{**r, **change} for r in rows]


BAD = {
    "empty": (lambda rows: "", r"no predictions \(the file is empty\)"),
    "not json": (lambda rows: '{"text": "a"}\n{oops\n', r":2: malformed JSON"),
    "no prediction fields": (lambda rows: json.dumps({"text": "only a text", "date": "2024-01-01"}) + "\n",
                             r"missing prediction field\(s\) \['decided_frames', 'stance'"),
    "bad date": (lambda rows: "".join(json.dumps(r) + "\n" for r in rows[:3] + lines_with(rows[3:4], date="last Tuesday")),
                 r":4: field 'date': cannot parse 'last Tuesday' as a date"),
    "unknown frame": (lambda rows: json.dumps({**rows[0], "decided_frames": ["friendship"]}) + "\n",
                      r":1: field 'decided_frames': frame\(s\) \['friendship'\] are not in the label schema"),
    "unknown stance": (lambda rows: json.dumps({**rows[0], "stance": "angry"}) + "\n", r":1: field 'stance': 'angry'"),
    "score out of range": (lambda rows: json.dumps({**rows[0], "frames": {**rows[0]["frames"], "transactional": 7}}) + "\n",
                           r":1: field 'frame_transactional': expected a probability"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_and_writes_nothing(inputs, capsys, case):
    make, message = BAD[case]
    path = inputs["work"] / f"bad-{case.replace(' ', '_')}.jsonl"
    path.write_text(make(inputs["rows"]))
    out = inputs["work"] / f"bad-{case.replace(' ', '_')}.html"
    out.write_text("previous report")
    code, err = report(inputs, path, out, capsys)
    assert code == 2 and re.search(message, err), err
    assert err.startswith("framing report: error: ") and str(path) in err
    assert out.read_text() == "previous report"  # an old page is never half-replaced
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temp file left behind


def test_bad_metrics_file_exits_2(inputs, capsys):
    broken = inputs["work"] / "broken.json"
    broken.write_text("{ not json")
    out = inputs["work"] / "never.html"
    code, err = run_cli(["report", str(inputs["predict"]), "--out", str(out), "--metrics", str(broken)], capsys)
    assert code == 2 and "broken.json: not valid JSON" in err and not out.exists()


# ---------------------------------------------------------------------------------------------- monitor


def make_log(path: Path, training, n: int, seed: int, frame_rates=None, long_texts=False) -> Path:
    from pipeline.reference import load_reference

    ref = load_reference(training, FRAMES, STANCES)
    rng = np.random.default_rng(seed)
    rates = frame_rates or {k: ref.frame_rate(k) for k in FRAMES}
    outputs = [prediction(rng, rates, {s: ref.stance_rate(s) for s in STANCES}) for _ in range(n)]
    texts = ["y" * int(rng.choice(ref.lengths) * (5 if long_texts else 1)) for _ in range(n)]
    return write_jsonl(path, log_lines(outputs, texts))


def monitor(inputs, log, out, capsys) -> tuple[int, str]:
    return run_cli(["monitor", "--log", str(log), "--out", str(out), "--training-data", str(inputs["training"]),
                    "--labels", LABELS], capsys)


def test_monitor_exit_0_without_drift_and_1_with(inputs, capsys):
    calm = make_log(inputs["work"] / "calm.jsonl", inputs["training"], 300, 1)
    code, err = monitor(inputs, calm, inputs["work"] / "calm.html", capsys)
    page = (inputs["work"] / "calm.html").read_text()
    assert code == 0 and "No drift" in page and page.count('<figure class="chart"') >= 7
    shifted = make_log(inputs["work"] / "shifted.jsonl", inputs["training"], 300, 2,
                       frame_rates={"isolated_pariah": 0.02, "transactional": 0.95, "strategic_partnership": 0.02})
    code, err = monitor(inputs, shifted, inputs["work"] / "shifted.html", capsys)
    page = (inputs["work"] / "shifted.html").read_text()
    assert code == 1 and "drift in isolated_pariah, transactional, strategic_partnership" in err
    assert 'class="note bad"' in page and "DRIFT" in page


def test_monitor_flags_longer_texts(inputs, capsys):
    log = make_log(inputs["work"] / "long.jsonl", inputs["training"], 200, 3, long_texts=True)
    code, err = monitor(inputs, log, inputs["work"] / "long.html", capsys)
    assert code == 1 and "text length" in err


@pytest.mark.parametrize("content, message", [
    ("", "no predictions"),
    (json.dumps({"frames": {}, "decided_frames": [], "stance": "neutral"}) + "\n", "field 'frames': no score for"),
])
def test_monitor_bad_log_exits_2(inputs, capsys, content, message):
    log = inputs["work"] / "bad.log"
    log.write_text(content)
    out = inputs["work"] / "bad-monitor.html"
    code, err = monitor(inputs, log, out, capsys)
    assert code == 2 and message in err and not out.exists()


def test_monitor_needs_the_log_fields(inputs, capsys):
    rows = inputs["rows"][:40]  # `predict` lines: no time, no chars
    out = inputs["work"] / "notalog.html"
    code, err = monitor(inputs, write_jsonl(inputs["work"] / "notalog.jsonl", rows), out, capsys)
    assert code == 2 and "missing field 'time'" in err and not out.exists()
