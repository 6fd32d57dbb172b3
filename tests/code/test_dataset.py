import json

import pytest

from pipeline import dataset
from pipeline.annotations import AnnotationRecord, parse_task
from pipeline.errors import InputError


def passage(pid, doc="d1", index=0, cluster=None):
    return {"id": pid, "text": f"text {pid}", "doc_id": doc, "cluster_id": cluster or pid, "date": None,
            "sources": [{"doc_id": doc, "paragraph_index": index}]}


def rec(pid, annotator, frames=(), stance="neutral", off_topic=False, cancelled=False, updated="2026-01-01", doc="d1", index=0):
    return AnnotationRecord(file="f.json", task_id=1, annotation_id=1, passage_id=pid, annotator=annotator,
                            frames=frozenset(frames), stance=None if off_topic else stance, off_topic=off_topic,
                            cancelled=cancelled, updated_at=updated, doc_id=doc, paragraph_index=index)


def test_majority_vote_per_label(schema):
    passages = {"p": passage("p")}
    records = [rec("p", "a", ["transactional"], "critical"), rec("p", "b", ["transactional", "isolated_pariah"], "critical"),
               rec("p", "c", [], "neutral")]
    (example,), report = dataset.resolve(records, passages, schema)
    assert example.frames == ("transactional",) and example.stance == "critical" and example.n_annotators == 3
    assert not any(report.values())


def test_ties_are_excluded_and_off_topic_passages_kept_without_stance(schema):
    passages = {"tie": passage("tie", index=0), "off": passage("off", index=1), "ok": passage("ok", index=2)}
    records = [rec("tie", "a", ["transactional"]), rec("tie", "b", []),
               rec("off", "a", off_topic=True, index=1), rec("off", "b", off_topic=True, index=1),
               rec("ok", "a", index=2), rec("ok", "b", index=2, cancelled=True)]
    examples, report = dataset.resolve(records, passages, schema)
    assert [e.id for e in examples] == ["off", "ok"]
    off = examples[0]  # kept as a frame negative with no stance
    assert off.off_topic and off.frames == () and off.stance is None
    assert report["ties"] == [{"passage_id": "tie", "labels": ["transactional"], "annotators": 2}]
    assert report["off_topic"][0]["passage_id"] == "off" and len(report["cancelled"]) == 1


def test_latest_judgement_of_an_annotator_wins(schema):
    records = [rec("p", "a", [], "critical", updated="2026-01-02"), rec("p", "a", [], "neutral", updated="2026-01-01")]
    (example,), _ = dataset.resolve(records, {"p": passage("p")}, schema)
    assert example.stance == "critical" and example.n_annotators == 1


def test_changed_passage_text_is_reported_unknown_passage_is_an_error(schema):
    passages = {"new": passage("new", doc="d1", index=4)}
    examples, report = dataset.resolve([rec("old", "a", doc="d1", index=4)], passages, schema)
    assert not examples and report["stale"][0]["now"] == "new"
    with pytest.raises(InputError, match="f.json: task 1: annotation for unknown passage 'ghost'"):
        dataset.resolve([rec("ghost", "a", doc="elsewhere", index=9)], passages, schema)


def test_an_adjudication_decides_and_is_not_a_vote(schema):
    passages = {"p": passage("p")}
    records = [rec("p", "a", ["transactional"], "critical"), rec("p", "b", [], "neutral"),
               AnnotationRecord(file="adj.json", task_id=9, annotation_id=9, passage_id="p", annotator="judge",
                                frames=frozenset({"isolated_pariah"}), stance="supportive", off_topic=False,
                                cancelled=False, updated_at="2026-02-01", adjudication=True)]
    (example,), report = dataset.resolve(records, passages, schema)
    assert example.frames == ("isolated_pariah",) and example.stance == "supportive"
    assert example.adjudicated and example.n_annotators == 2 and not report["ties"]
    assert report["adjudicated"] == [{"passage_id": "p", "adjudicator": "judge", "annotators": 2}]


def test_passage_metadata_gives_outlet_type_year_and_defaults_for_collected_documents():
    meta = dataset.passage_metadata({"doc_id": "wire:wire-a-01", "date": "2019-04-25",
                                     "meta": {"outlet": "wire-a", "outlet_type": "wire", "country": "international",
                                              "year": 2019, "event": "vladivostok_2019", "genre": "news"}})
    assert meta == {"outlet": "wire-a", "outlet_type": "wire", "country": "international", "year": 2019,
                    "event": "vladivostok_2019", "genre": "news"}
    seed = dataset.passage_metadata({"doc_id": "004_baad", "date": "2023-11-14"})
    assert seed["outlet"] == "004_baad" and seed["outlet_type"] == "collected" and seed["year"] == 2023


def test_run_writes_nothing_on_bad_annotations(tmp_path, built, params, root):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "bad.json").write_text(json.dumps([{"id": 5, "data": {"text": "x", "passage_id": "nope"},
                                               "annotations": [{"id": 1, "completed_by": 1, "result": []}]}]))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="bad.json: task 5, annotation 1: missing stance"):
        dataset.run(built["passages"], ann, root / "configs/labels.yaml", out / "ds", out / "pq", out / "s.json",
                    out / "r.json", params.dataset, params.seed)
    assert not out.exists() or not any(out.iterdir())


def test_agreement_counts_only_an_annotators_latest_judgement(tmp_path, built, root, params, schema):
    """A superseded judgement must not move any agreement figure in metrics/dataset.json, whatever
    order the export lists it in (regression: the statistics took the last record read)."""
    import shutil

    from tests.exports import ann, task

    seed_tasks = json.loads((root / "labels/annotations/seed_annotations.json").read_text(encoding="utf-8"))
    single = next(t for t in seed_tasks if len(t["annotations"]) == 1)  # one annotator so far
    (first,) = parse_task(single, schema, "seed")
    other_stance = next(s for s in schema.stance_names if s != first.stance)
    newest = ann(901, {"id": 77, "email": "second@example.org"}, sorted(first.frames), first.stance,
                 updated="2026-11-30T10:00:00Z", schema=schema)
    older = ann(900, {"id": 77, "email": "second@example.org"}, sorted(first.frames), other_stance,
                updated="2026-11-29T10:00:00Z", schema=schema)
    extra = {**task(5000, single["data"]["passage_id"]), "data": single["data"]}

    def agreement(annotations: list[dict]) -> dict:
        folder = tmp_path / "-".join(str(a["id"]) for a in annotations)
        folder.mkdir()
        shutil.copy(root / "labels/annotations/seed_annotations.json", folder)
        (folder / "second.json").write_text(json.dumps([{**extra, "annotations": annotations}]), encoding="utf-8")
        out = folder / "out"
        stats = dataset.run(built["passages"], folder, root / "configs/labels.yaml", out / "ds", out / "pq",
                            out / "stats.json", out / "report.json", params.dataset, params.seed)
        return stats["agreement"]

    only_latest = agreement([newest])
    with_superseded = agreement([newest, older])  # the older judgement is read last
    assert with_superseded == only_latest
    assert with_superseded["stance"]["observed"] > agreement([older])["stance"]["observed"]
