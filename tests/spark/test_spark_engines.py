"""The Spark engines give the local engines' output exactly: ingest (passages file and report,
byte for byte) and score (every row and column), on the shipped documents and on synthetic ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.train.generate import generate
from pipeline import ingest, score
from pipeline.config import ScoreParams
from pipeline.errors import InputError
from pipeline.spark import ingest as spark_ingest

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- ingest


def test_ingest_engines_agree_on_seeds_and_corpus(spark, tmp_path, params, built):
    summary = spark_ingest.run([ROOT / d for d in params.ingest.input_dirs], tmp_path / "p.jsonl", tmp_path / "r.json",
                               params.ingest, params.seed, params.spark)
    assert (tmp_path / "p.jsonl").read_bytes() == built["passages"].read_bytes()
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(built["ingest_report"].read_text())
    assert summary["exact_duplicates_merged"] > 0  # seeds 001 and 002: one record, both sources


def test_ingest_engines_agree_on_near_duplicates_and_a_jsonl_file_cut_into_tasks(spark, tmp_path, params):
    manifest = generate(5000, tmp_path / "gen", seed=5, docs_per_file=10_000, near_dup_rate=0.05)
    docs = tmp_path / "gen" / "docs"
    assert manifest["doc_bytes"] > 1 << 20  # one file, more than one 1 MiB task
    local = ingest.run(docs, tmp_path / "l.jsonl", tmp_path / "l.json", params.ingest, params.seed)
    small_tasks = replace(params.spark, chunk_mib=1)
    assert len(spark_ingest.plan_tasks(spark, ingest.list_documents([docs]), 1 << 20)) >= 2
    spark_ingest.run(docs, tmp_path / "s.jsonl", tmp_path / "s.json", params.ingest, params.seed, small_tasks)
    assert local["near_duplicate_passages"] > 50 and local["exact_duplicates_merged"] > 0
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "l.jsonl").read_bytes()
    assert (tmp_path / "s.json").read_bytes() == (tmp_path / "l.json").read_bytes()


@pytest.mark.parametrize("name, content, message", [
    ("bad.txt", b"A fine first paragraph that reads like prose, with eight words.\n\xff\xfe oops\n",
     r"bad\.txt:2: not valid UTF-8"),
    ("docs.jsonl", b'{"text": "A fine document of prose, long enough to be kept."}\n{"id": 3}\n',
     r"docs\.jsonl:2: field 'text'"),
    ("blank.jsonl", b"\n\n  \n", r"blank\.jsonl: no documents"),
])
def test_spark_ingest_names_bad_input_and_writes_nothing(spark, tmp_path, params, name, content, message):
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        spark_ingest.run(src, tmp_path / "p.jsonl", tmp_path / "r.json", params.ingest, params.seed, params.spark)
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------- score


@pytest.fixture(scope="module")
def champion_scoring(trained, params):
    return score.resolve_model(None, params.train, tracking=trained["tracking"])


def _both(inp, tmp_path, scoring, tracking, params: ScoreParams, workers=2):
    local = score.run(inp, tmp_path / "local", params, scoring, workers=workers, tracking=tracking)
    spark = score.run(inp, tmp_path / "spark", params, scoring, engine="spark", tracking=tracking)
    return local, spark, list(score.iter_rows(tmp_path / "local")), list(score.iter_rows(tmp_path / "spark"))


def test_score_engines_agree_row_by_row_with_the_registered_champion(spark, tmp_path, built, champion_scoring,
                                                                     trained, params):
    # The passages with extra fields of every kind, cut into several parts.
    records = [json.loads(line) for line in built["passages"].read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(records):
        r.update({"n": i, "weight": i / 7 if i % 3 else i, "flag": bool(i % 2), "stance": "theirs" if i % 5 else None})
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    local, spark_summary, a, b = _both(inp, tmp_path, champion_scoring, trained["tracking"],
                                       replace(params.score, batch_size=256))
    assert spark_summary["engine"] == "spark" and spark_summary["master"] == "local[2]" and local["parts"] >= 2
    assert local["input_digest"] == spark_summary["input_digest"] and len(a) == len(b) == len(records)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, (i, {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)})
    assert a[0]["model_name"] == "framing-classifier" and a[0]["model_version"] == champion_scoring.version
    assert sum(bool(r["decided_frames"]) for r in a) > len(a) / 4  # the champion decides frames: a real comparison
    assert pq.read_schema(tmp_path / "spark" / "part-00000.parquet").remove_metadata() == \
        pq.read_schema(tmp_path / "local" / "part-00000.parquet").remove_metadata()


def test_score_engines_agree_on_parquet_and_a_model_file(spark, tmp_path, trained, params):
    texts = [json.loads(line)["text"] for line in (ROOT / "tests/model/challenge.jsonl").read_text().splitlines()]
    table = pa.table({"text": texts, "id": list(range(len(texts))),
                      "tags": [[f"t{i}", "x"] for i in range(len(texts))],
                      "src": [{"outlet": "o", "year": 2024}] * len(texts)})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=16)
    scoring = score.resolve_model(trained["work"] / "model.pkl", params.train)
    local, spark_summary, a, b = _both(tmp_path / "in.parquet", tmp_path, scoring, trained["tracking"],
                                       params.score, workers=1)
    assert local["parts"] >= 2 and a == b and [r["id"] for r in b] == list(range(len(texts)))
    assert b[0]["tags"] == ["t0", "x"] and b[0]["src"] == {"outlet": "o", "year": 2024}


def test_spark_names_a_bad_row(spark, tmp_path, champion_scoring, trained, params):
    (tmp_path / "in.jsonl").write_text('{"text": "Russia and North Korea signed a treaty."}\n{"text": ["no"]}\n')
    with pytest.raises(InputError, match=r"in\.jsonl:2: field 'text'"):
        score.run(tmp_path / "in.jsonl", tmp_path / "out", params.score, champion_scoring, engine="spark",
                  tracking=trained["tracking"])
    assert not (tmp_path / "out").exists()


def test_spark_refuses_a_model_logged_without_whole_record_output(spark, tmp_path, trained, params):
    """Registry versions logged before `framing score` existed have no 'output' parameter."""
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    from pipeline.mlflow_model import FramingPyfunc, records_frame

    model = trained["model"]
    example = np.asarray(["Russia and North Korea signed a treaty."])
    old = tmp_path / "old_model"
    mlflow.pyfunc.save_model(str(old), python_model=FramingPyfunc(), artifacts={"model": str(trained["work"] / "model.pkl")},
                             signature=infer_signature(example, records_frame(model.predict(list(example)))))
    scoring = score.ScoringModel(model, "framing-classifier", "1", uri=str(old))
    (tmp_path / "in.jsonl").write_text('{"text": "Russia and North Korea signed a treaty."}\n')
    with pytest.raises(InputError, match="logged before the pyfunc could return whole records"):
        score.run(tmp_path / "in.jsonl", tmp_path / "out", params.score, scoring, engine="spark",
                  tracking=trained["tracking"])
