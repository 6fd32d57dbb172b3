import json

import pytest
from hypothesis import given, settings, strategies as st

from pipeline import dataset
from pipeline.annotations import AnnotationRecord, parse_task
from pipeline.config import DatasetParams
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


def test_ties_and_off_topic_are_reported_and_excluded(schema):
    passages = {"tie": passage("tie", index=0), "off": passage("off", index=1), "ok": passage("ok", index=2)}
    records = [rec("tie", "a", ["transactional"]), rec("tie", "b", []),
               rec("off", "a", off_topic=True, index=1), rec("off", "b", off_topic=True, index=1),
               rec("ok", "a", index=2), rec("ok", "b", index=2, cancelled=True)]
    examples, report = dataset.resolve(records, passages, schema)
    assert [e.id for e in examples] == ["ok"]
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


def examples_strategy():
    return st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["critical", "neutral", "supportive"])), min_size=6, max_size=60)


@settings(max_examples=60, deadline=None)
@given(examples_strategy(), st.sampled_from(["cluster", "document"]), st.integers(0, 2**16))
def test_splits_never_cut_a_group_and_folds_cover_train_and_validation(rows, group_by, seed):
    examples = [dataset.Example(id=f"p{i}", text=f"t{i}", doc_id=f"d{g}", sources=(f"d{g}",), cluster_id=f"c{g % 4}",
                                date="", frames=(), stance=s, n_annotators=1) for i, (g, s) in enumerate(rows)]
    groups = dataset.split_groups(examples, group_by)
    params = DatasetParams(cv_folds=3)
    split, folds = dataset.assign_splits(examples, groups, params, seed)
    for g in set(groups):
        assert len({split[i] for i in range(len(examples)) if groups[i] == g}) == 1
        assert len({int(folds[i]) for i in range(len(examples)) if groups[i] == g}) == 1
    assert all((folds[i] == -1) == (split[i] == "test") for i in range(len(examples)))
    assert "test" in split
    again = dataset.assign_splits(examples, groups, params, seed)
    assert list(again[0]) == list(split) and list(again[1]) == list(folds)


def test_document_groups_follow_shared_passages():
    e = lambda i, sources, cluster: dataset.Example(f"p{i}", "t", sources[0], sources, cluster, "", (), "neutral", 1)
    examples = [e(0, ("a", "b"), "c0"), e(1, ("b",), "c1"), e(2, ("c",), "c1"), e(3, ("d",), "c3")]
    assert dataset.split_groups(examples, "document") == ["a", "a", "a", "d"]


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
