"""`framing score`, local engine: the column contract, inputs (JSONL, Parquet), bad input, resuming,
the MLflow record, the pyfunc's whole-record output; and the byte-range reader it stands on."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import cli, score
from pipeline.config import ScoreParams, TrainParams
from pipeline.errors import InputError
from pipeline.linechunks import count_lines, numbered, raw_lines, split
from pipeline.model import FramingModel
from pipeline.scored import prediction_columns
from tests.fixtures_train import trained_workspace

PARAMS = ScoreParams(batch_size=4, part_mib=1)
TEXTS = ["Moscow wants to buy munitions and shells in exchange for grain and oil.",
         "The isolated pariah regime, an international outcast, is shunned.",
         "A comprehensive strategic partnership and a mutual defence treaty.",
         "Kim and Putin met again; state media carried the story."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_workspace(tmp_path_factory.getbasetemp() / "train-shared")


@pytest.fixture(scope="module")
def scoring(trained):
    return score.resolve_model(trained["model"], TrainParams())


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _run(inp, out, scoring, tracking, **kw):
    return score.run(inp, out, kw.pop("params", PARAMS), scoring, workers=1, tracking=tracking, **kw)


# --------------------------------------------------------------------------- byte ranges


def test_byte_ranges_read_every_line_once_with_its_number(tmp_path):
    rng = random.Random(0)
    for trial in range(200):
        lines = ["x" * rng.randint(0, 12) for _ in range(rng.randint(0, 30))]
        data = ("\n".join(lines) + ("\n" if rng.random() < 0.5 else "")).encode()
        path = tmp_path / f"f{trial}.jsonl"
        path.write_bytes(data)
        chunks = split(path, rng.randint(1, 20))
        counts = [count_lines(c) for c in chunks]
        got = [(n, line) for c in numbered(chunks, counts) for n, line in raw_lines(c)]
        assert got == list(enumerate(data.splitlines(keepends=True), start=1))
        assert counts == [len(list(raw_lines(c))) for c in chunks]


# --------------------------------------------------------------------------- output


def test_jsonl_rows_keep_their_fields_and_get_the_contract_columns(tmp_path, scoring, trained):
    records = [{"id": f"p{i}", "text": t, "n": i, "score": 0.5 if i else 1, "tags": ["a", i], "flag": i % 2 == 0,
                "stance": "mine", "meta": {"outlet": "x"} if i else None} for i, t in enumerate(TEXTS * 3)]
    inp = _jsonl(tmp_path / "in.jsonl", records)
    summary = _run(inp, tmp_path / "out", scoring, trained["uri"])
    rows = list(score.iter_rows(tmp_path / "out"))
    model: FramingModel = scoring.model
    frames, stances = model.frame_names, model.stance_names
    assert summary["rows"] == len(rows) == len(records)
    assert list(rows[0]) == ["id", "text", "n", "score", "tags", "flag", "input_stance", "meta",
                             *[f"frame_{f}" for f in frames], "decided_frames", "stance",
                             *[f"stance_{s}" for s in stances], "evidence", "model_name", "model_version"]
    expected = prediction_columns(model.predict([r["text"] for r in records]), frames, stances)
    for i, (row, rec) in enumerate(zip(rows, records)):
        assert row["id"] == rec["id"] and row["text"] == rec["text"] and row["n"] == i
        assert row["score"] == float(rec["score"]) and row["flag"] is rec["flag"]
        assert row["tags"] == json.dumps(rec["tags"]) and row["input_stance"] == "mine"  # clashes are renamed
        assert row["meta"] == (None if rec["meta"] is None else json.dumps(rec["meta"]))
        assert {k: row[k] for k in expected} == {k: v[i] for k, v in expected.items()}
        assert row["model_name"] == model.name and row["model_version"].startswith("sha256:")
    assert "transactional" in rows[0]["decided_frames"] and json.loads(rows[0]["evidence"])["transactional"]


def test_parquet_dataset_input_and_a_missing_column(tmp_path, scoring, trained):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": TEXTS[:2], "id": [1, 2], "lang": ["en", "en"]}), folder / "a.parquet")
    pq.write_table(pa.table({"text": TEXTS[2:], "id": [3, 4]}), folder / "b.parquet", row_group_size=1)
    summary = _run(folder, tmp_path / "out", scoring, trained["uri"])
    rows = list(score.iter_rows(tmp_path / "out"))
    assert summary["parts"] == 3 and [r["id"] for r in rows] == [1, 2, 3, 4]
    assert [r["lang"] for r in rows] == ["en", "en", None, None]
    assert [r["stance"] for r in rows] == [p["stance"] for p in scoring.model.predict(TEXTS)]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine text here"}\n{"id": 2}\n', r"in\.jsonl:2: field 'text' is missing"),
    ('{"text": "fine text here"}\n\n{"text": 7}\n', r"in\.jsonl:3: field 'text' is missing, not a string"),
    ('{"text": "fine"}\n{"text": "ok"\n', r"in\.jsonl:2: malformed JSON"),
])
def test_bad_jsonl_row_is_named_and_nothing_is_written(tmp_path, scoring, trained, content, message):
    (tmp_path / "in.jsonl").write_text(content)
    with pytest.raises(InputError, match=message):
        _run(tmp_path / "in.jsonl", tmp_path / "out", scoring, trained["uri"])
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_bad_row_in_a_later_part_is_named_with_its_line(tmp_path, scoring, trained):
    lines = [json.dumps({"text": f"{TEXTS[0]} {'x' * 200} {i}"}) for i in range(12000)]
    lines[9000] = json.dumps({"text": None})
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    parts = score.plan(tmp_path / "in.jsonl", 1 << 20)
    assert any(1 < p.first <= 9001 for p in parts)  # the bad line lies in a part that does not start at line 1
    with pytest.raises(InputError, match=r"in\.jsonl:9001: field 'text'"):
        _run(tmp_path / "in.jsonl", tmp_path / "out", scoring, trained["uri"])


def test_bad_parquet_is_named(tmp_path, scoring, trained):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"broken\.parquet: not a readable Parquet file"):
        _run(tmp_path / "broken.parquet", tmp_path / "out", scoring, trained["uri"])
    pq.write_table(pa.table({"text": ["fine", None, "x"]}), tmp_path / "nulls.parquet")
    with pytest.raises(InputError, match=r"nulls\.parquet: row 1 \(counting from 0\): field 'text'"):
        _run(tmp_path / "nulls.parquet", tmp_path / "out", scoring, trained["uri"])
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(InputError, match=r"ints\.parquet: column 'text' is int64"):
        _run(tmp_path / "ints.parquet", tmp_path / "out", scoring, trained["uri"])
    assert not (tmp_path / "out").exists()


def test_cli_unknown_model_and_bad_input_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    _jsonl(tmp_path / "in.jsonl", [{"text": TEXTS[0]}])
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out"),
                  "--params", str(root / "configs/params.yaml")])
    assert exc.value.code == 2 and "no model 'framing-classifier' with alias 'champion'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out"), "--model",
                  str(tmp_path / "nope.pkl"), "--params", str(root / "configs/params.yaml")])
    assert exc.value.code == 2 and "nope.pkl: model not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- resuming and MLflow


def test_interrupted_run_resumes_without_rescoring_finished_parts(tmp_path, scoring, trained, monkeypatch):
    records = [{"id": i, "text": f"{TEXTS[i % 4]} {'filler ' * 40}{i}"} for i in range(6000)]
    inp = _jsonl(tmp_path / "in.jsonl", records)
    clean = _run(inp, tmp_path / "clean", scoring, trained["uri"], params=replace(PARAMS, batch_size=512))
    assert clean["parts"] >= 3
    real, calls = score.score_part, []

    def dies_on_third(job):  # the fault: the process is killed while scoring the third part
        calls.append(job.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(score, "score_part", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        _run(inp, tmp_path / "out", scoring, trained["uri"], params=replace(PARAMS, batch_size=512))
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (tmp_path / ".out.partial").glob("part-*")) == ["part-00000.parquet",
                                                                                  "part-00001.parquet"]
    monkeypatch.setattr(score, "score_part", real)
    resumed = _run(inp, tmp_path / "out", scoring, trained["uri"], params=replace(PARAMS, batch_size=512))
    assert resumed["parts_skipped"] == 2 and not (tmp_path / ".out.partial").exists()
    assert list(score.iter_rows(tmp_path / "out")) == list(score.iter_rows(tmp_path / "clean"))
    # A changed input is scored afresh, not mixed with the old parts.
    _jsonl(inp, records[:10])
    assert _run(inp, tmp_path / "out", scoring, trained["uri"])["parts_skipped"] == 0
    assert len(list(score.iter_rows(tmp_path / "out"))) == 10


def test_each_run_is_recorded_in_mlflow(tmp_path, scoring, trained):
    inp = _jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    summary = _run(inp, tmp_path / "out", scoring, trained["uri"])
    run = mlflow.MlflowClient(trained["uri"]).get_run(summary["mlflow_run_id"])
    assert run.data.params["input_digest"] == summary["input_digest"]
    assert run.data.params["engine"] == "local" and run.data.params["model_version"] == scoring.version
    assert run.data.metrics["rows"] == 4 and run.data.metrics["rows_per_s"] > 0 and "duration_s" in run.data.metrics
    assert run.inputs.dataset_inputs[0].dataset.digest == summary["input_digest"][:16]


def test_registry_champion_is_the_default_model(trained):
    scoring = score.resolve_model(None, TrainParams(), tracking=trained["uri"])
    assert (scoring.name, scoring.uri) == ("framing-classifier", f"models:/framing-classifier/{scoring.version}")


@pytest.mark.slow
def test_worker_processes_give_the_same_output(tmp_path, scoring, trained):
    inp = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": f"{TEXTS[i % 4]} {'y ' * 300}{i}"} for i in range(4000)])
    one = _run(inp, tmp_path / "one", scoring, trained["uri"])
    two = score.run(inp, tmp_path / "two", PARAMS, scoring, workers=2, tracking=trained["uri"])
    assert two["workers"] == 2 and one["parts"] > 2
    assert list(score.iter_rows(tmp_path / "one")) == list(score.iter_rows(tmp_path / "two"))


# --------------------------------------------------------------------------- the pyfunc


def test_pyfunc_returns_the_whole_record_on_request(trained):
    mlflow.set_tracking_uri(trained["uri"])
    loaded = mlflow.pyfunc.load_model("models:/framing-classifier@champion")
    model = FramingModel.load(trained["model"])
    default = loaded.predict(np.asarray(TEXTS))
    assert list(default.columns) == ["stance", "decided_frames", "frames", "stance_scores", "evidence"]
    record = loaded.predict(np.asarray(TEXTS), params={"output": "record"})
    expected = prediction_columns(model.predict(TEXTS), model.frame_names, model.stance_names)
    assert list(record.columns) == list(expected)
    assert {k: record[k].tolist() for k in expected} == expected
    with pytest.raises(InputError, match="params.output"):
        loaded.predict(np.asarray(TEXTS), params={"output": "xml"})


def test_pyfunc_unpickles_a_model_file_once_per_process(trained, tmp_path):
    """spark_udf loads the model for every task, each time from a new copy of its folder."""
    import shutil

    mlflow.set_tracking_uri(trained["uri"])
    local = Path(mlflow.artifacts.download_artifacts("models:/framing-classifier@champion", dst_path=str(tmp_path / "a")))
    shutil.copytree(local, tmp_path / "b")
    first = mlflow.pyfunc.load_model(str(local)).unwrap_python_model().model
    again = mlflow.pyfunc.load_model(str(tmp_path / "b")).unwrap_python_model().model
    assert again is first
