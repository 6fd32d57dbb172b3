"""Label Studio conversions, merge rules, agreement and active-learning order (no server)."""

import json

import pytest

from pipeline.annotations import choices_results, parse_task
from pipeline.errors import InputError
from pipeline.labels import label_config_xml
from pipeline.labelstudio import active, convert, server
from pipeline.labelstudio.client import check_label_config, export_path


# -- schema → label config -------------------------------------------------------------------

def test_label_config_has_the_controls_and_display_names(schema, root):
    xml = label_config_xml(schema)
    for name in ('name="text"', 'name="frames"', 'name="stance"', 'name="flags"'):
        assert name in xml
    for label in (*schema.frames, *schema.stance):
        assert f'value="{label.display}"' in xml
    assert check_label_config(root / "labels/label_config.xml", schema) == xml


def test_stale_label_config_is_refused(schema, tmp_path):
    path = tmp_path / "label_config.xml"
    path.write_text(label_config_xml(schema).replace("Transactional", "Deal"), encoding="utf-8")
    with pytest.raises(InputError, match="out of date"):
        check_label_config(path, schema)
    with pytest.raises(InputError, match="not found"):
        check_label_config(tmp_path / "missing.xml", schema)


def test_guidelines_render_as_html():
    html = convert.guidelines_html("# Title\n\n1. **Frames**: tick <b>them</b>\n")
    assert "<h1>Title</h1>" in html and "<strong>Frames</strong>" in html


# -- passages → tasks, predictions ----------------------------------------------------------

PASSAGE = {"id": "p1", "text": "Kim met Putin.", "doc_id": "d1", "paragraph_index": 3, "date": None,
           "sources": [{"doc_id": "d1", "paragraph_index": 3}, {"doc_id": "d0", "paragraph_index": 9}],
           "cluster_id": "c1"}


def test_task_data_has_the_seed_fields():
    data = convert.task_data(PASSAGE, priority=4)
    assert {k: data[k] for k in convert.TASK_FIELDS} == {
        "text": "Kim met Putin.", "passage_id": "p1", "doc_id": "d1", "paragraph_index": 3, "date": "",
        "sources": "d0, d1"}
    assert data["priority"] == 4 and data["cluster_id"] == "c1"
    assert convert.passage_locations(PASSAGE) == {("d1", 3), ("d0", 9)}


OUTPUT = {"frames": {"isolated_pariah": 0.1, "transactional": 0.8, "strategic_partnership": 0.6},
          "decided_frames": ["strategic_partnership", "transactional"], "stance": "critical",
          "stance_scores": {"critical": 0.7, "neutral": 0.2, "supportive": 0.1}}


def test_prediction_carries_frames_stance_scores_and_version(schema):
    pred = convert.prediction(OUTPUT, schema, "lexicon@abc", 0.42)
    assert pred["model_version"] == "lexicon@abc" and pred["score"] == 0.42
    frames, stance = pred["result"]
    assert frames["from_name"] == "frames" and frames["value"]["choices"] == ["Transactional", "Strategic partnership"]
    assert frames["score"] == 0.6 and stance["value"]["choices"] == ["Critical"] and stance["score"] == 0.7
    # a prediction's result is a valid annotation result for the schema
    (record,) = parse_task({"id": 1, "data": {"text": "t", "passage_id": "p"},
                            "annotations": [{"id": 1, "completed_by": 1, "result": pred["result"]}]}, schema, "x")
    assert record.frames == {"transactional", "strategic_partnership"} and record.stance == "critical"


def test_prediction_without_decided_frames_has_only_stance(schema):
    pred = convert.prediction({**OUTPUT, "decided_frames": []}, schema, "m", 0.5)
    assert [r["from_name"] for r in pred["result"]] == ["stance"]


def test_prediction_with_labels_outside_the_schema_is_refused(schema):
    with pytest.raises(InputError, match="not in the label schema"):
        convert.prediction({**OUTPUT, "stance": "hostile", "stance_scores": {"hostile": 1.0}}, schema, "m", 0.5)


# -- active learning ------------------------------------------------------------------------

def test_uncertainty_and_confidence():
    certain = {"frames": {"a": 0.0, "b": 1.0}, "stance_scores": {"x": 1.0, "y": 0.0, "z": 0.0}}
    coin = {"frames": {"a": 0.5, "b": 0.5}, "stance_scores": {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}}
    assert active.uncertainty(certain) == 0.0 and active.confidence(certain) == 1.0
    assert active.uncertainty(coin) == pytest.approx(1.0) and active.confidence(coin) == pytest.approx(0.0)
    assert 0 < active.uncertainty(OUTPUT) < 1


def test_order_is_most_uncertain_first():
    assert active.order(["a", "b", "c"], [0.1, 0.9, 0.5]) == [1, 2, 0]
    assert active.priorities(["a", "b", "c"], [0.1, 0.9, 0.5]) == [3, 1, 2]


def test_order_keeps_near_duplicates_apart():
    clusters = ["dup", "dup", "dup", "x", "y"]
    queue = active.order(clusters, [0.9, 0.89, 0.88, 0.5, 0.2])
    assert queue[0] == 0
    assert all(clusters[a] != clusters[b] for a, b in zip(queue, queue[1:]) if {clusters[a], clusters[b]} != {"dup"})
    assert queue.index(3) < queue.index(1)  # a second near-duplicate waits behind a fresh cluster


def test_order_without_a_model_keeps_passage_order_and_spreads_clusters():
    assert active.order(["a", "b", "c"]) == [0, 1, 2]
    assert active.order(["a", "a", "b"]) == [0, 2, 1]
    assert active.order(["a", "a"]) == [0, 1]


# -- merge rules ----------------------------------------------------------------------------

def ann(ann_id, who, frames=(), stance="neutral", updated="2026-01-01T00:00:00Z", cancelled=False, off_topic=False,
        schema=None):
    result = [] if cancelled else choices_results(schema, frames, None if off_topic else stance, off_topic)
    return {"id": ann_id, "completed_by": who, "result": result, "was_cancelled": cancelled,
            "created_at": updated, "updated_at": updated}


def task(task_id, pid, *anns):
    return {"id": task_id, "data": {"text": f"text {pid}", "passage_id": pid, "doc_id": "d", "paragraph_index": task_id},
            "annotations": list(anns), "predictions": [], "drafts": []}


def test_normalise_names_annotators_and_drops_predictions(schema):
    raw = task(1, "p1", ann(1, 5, schema=schema))
    raw["predictions"] = [{"id": 9}]
    out = convert.normalise_task(raw, {5: "ann@x.org"})
    assert out["annotations"][0]["completed_by"] == {"id": 5, "email": "ann@x.org"} and out["predictions"] == []
    assert raw["annotations"][0]["completed_by"] == 5  # input untouched
    assert convert.annotator_of(out["annotations"][0]) == "ann@x.org"
    assert convert.normalise_task(raw, {})["annotations"][0]["completed_by"] == 5


def test_merge_adds_keeps_and_records_history(schema):
    a = {"id": 1, "email": "a@x"}
    b = {"id": 2, "email": "b@x"}
    local = [task(1, "p1", ann(1, a, ["transactional"], schema=schema), ann(2, b, schema=schema)),
             task(2, "p2", ann(3, a, schema=schema))]  # p2 was deleted on the server
    remote = [task(1, "p1", ann(1, a, ["isolated_pariah"], "critical", "2026-02-01T00:00:00Z", schema=schema),
                   # b's annotation is gone on the server; c is new; a skipped task and an off-topic one
                   ann(4, {"id": 3, "email": "c@x"}, cancelled=True, schema=schema)),
              task(3, "p3", ann(5, a, off_topic=True, schema=schema)),
              task(4, "p4")]  # unannotated: not stored
    merged, counts = convert.merge_exports(local, remote)
    assert counts == {"added": 2, "updated": 1, "unchanged": 0, "kept_local_only": 2, "tasks": 3}
    by_pid = {t["data"]["passage_id"]: t for t in merged}
    assert set(by_pid) == {"p1", "p2", "p3"}
    p1 = {convert.annotator_of(x): x for x in by_pid["p1"]["annotations"]}
    assert set(p1) == {"a@x", "b@x", "c@x"}
    assert p1["a@x"]["result"][1]["value"]["choices"] == ["Critical"]
    (previous,) = p1["a@x"]["history"]
    assert previous["updated_at"] == "2026-01-01T00:00:00Z" and previous["result"][0]["value"]["choices"] == ["Transactional"]
    assert p1["c@x"]["was_cancelled"] is True
    records = [r for t in merged for r in parse_task(t, schema, "merged.json")]
    assert {(r.passage_id, r.annotator, r.cancelled, r.off_topic) for r in records} >= {
        ("p1", "c@x", True, False), ("p3", "a@x", False, True), ("p2", "a@x", False, False)}

    # pulling the same export again changes nothing, and history is not duplicated
    again, counts2 = convert.merge_exports(merged, remote)
    assert again == merged and counts2["updated"] == 0 and counts2["added"] == 0 and counts2["unchanged"] == 3


def test_merge_second_change_appends_to_history(schema):
    a = {"id": 1, "email": "a@x"}
    v1 = [task(1, "p1", ann(1, a, [], "neutral", "2026-01-01T00:00:00Z", schema=schema))]
    v2 = [task(1, "p1", ann(1, a, [], "critical", "2026-01-02T00:00:00Z", schema=schema))]
    v3 = [task(1, "p1", ann(1, a, [], "supportive", "2026-01-03T00:00:00Z", schema=schema))]
    merged, _ = convert.merge_exports([], v1)
    merged, _ = convert.merge_exports(merged, v2)
    merged, _ = convert.merge_exports(merged, v3)
    (current,) = merged[0]["annotations"]
    assert current["updated_at"] == "2026-01-03T00:00:00Z"
    assert [h["updated_at"] for h in current["history"]] == ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    assert all("history" not in h for h in current["history"])


def test_merge_several_server_annotations_of_one_annotator(schema):
    a = {"id": 1, "email": "a@x"}
    remote = [task(1, "p1", ann(2, a, [], "critical", "2026-01-02T00:00:00Z", schema=schema),
                   ann(1, a, [], "neutral", "2026-01-01T00:00:00Z", schema=schema))]
    merged, counts = convert.merge_exports([], remote)
    (current,) = merged[0]["annotations"]
    assert current["id"] == 2 and [h["id"] for h in current["history"]] == [1] and counts["added"] == 1


def test_merge_needs_passage_ids():
    with pytest.raises(InputError, match="passage_id"):
        convert.merge_exports([], [{"id": 1, "data": {"text": "x"}, "annotations": []}])


def test_export_path_never_is_the_seed_file(tmp_path):
    assert export_path(tmp_path, 3).name == "labelstudio_project_3.json"


# -- agreement ------------------------------------------------------------------------------

def test_cohen_kappa_known_values():
    assert convert.cohen_kappa([("a", "a"), ("b", "b"), ("a", "a"), ("b", "b")]) == 1.0
    assert convert.cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    # 2x2 table [[20, 5], [10, 15]]: po = .7, pe = .5 -> .4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert convert.cohen_kappa(pairs) == pytest.approx(0.4)
    assert convert.cohen_kappa([("a", "a"), ("a", "a")]) is None and convert.cohen_kappa([("a", "a")]) is None


def test_agreement_report_and_markdown(schema):
    a, b = {"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}
    tasks = [task(1, "p1", ann(1, a, ["transactional"], "neutral", schema=schema),
                  ann(2, b, ["transactional"], "critical", schema=schema)),
             task(2, "p2", ann(3, a, [], "critical", schema=schema), ann(4, b, [], "critical", schema=schema)),
             task(3, "p3", ann(5, a, [], "neutral", schema=schema), ann(6, b, cancelled=True, schema=schema)),
             task(4, "p4", ann(7, a, [], "supportive", schema=schema))]
    records = [r for t in tasks for r in parse_task(t, schema, "x.json")]
    report = convert.agreement_report(records, schema)
    assert report["passages_with_2plus_annotators"] == 2 and report["annotators"] == 2
    stance = report["labels"]["stance"]
    assert stance["units"] == 2 and stance["observed"] == 0.5
    assert stance["cohen_kappa"] == 0.0  # po = .5, pe = .5
    assert report["disagreements"] == [{"passage_id": "p1", "label": "stance", "values": {"a@x": "neutral", "b@x": "critical"}}]
    assert report["pairs"][0]["annotators"] == ["a@x", "b@x"]
    json.dumps(report)  # a DVC metrics file
    md = convert.agreement_markdown(report, {"p1": {"text": "Kim met Putin."}})
    assert "| stance | 2 | 0.500 |" in md and "`p1` **stance**" in md and "Kim met Putin." in md
    empty = convert.agreement_report([], schema)
    assert empty["passages_with_2plus_annotators"] == 0
    assert "No passage has two annotators" in convert.agreement_markdown(empty)


# -- settings -------------------------------------------------------------------------------

def test_settings_precedence_and_no_secrets_in_repr(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local\nLABEL_STUDIO_PORT=9001\nexport LABEL_STUDIO_PASSWORD='from-dotenv'\n"
                      "LABEL_STUDIO_USER_TOKEN=tok-dotenv\n", encoding="utf-8")
    s = server.load_settings(tmp_path / "state", env={"LABEL_STUDIO_USER_TOKEN": "tok-env"}, dotenv=dotenv)
    assert s.port == 9001 and s.url == "http://127.0.0.1:9001" and s.password == "from-dotenv"
    assert s.user_token == "tok-env" and s.api_key == "tok-env" and s.data_dir == tmp_path / "state" / "data"
    assert "tok-env" not in repr(s) and "from-dotenv" not in repr(s)
    s = server.load_settings(tmp_path / "state", port=9100, env={"LABEL_STUDIO_API_KEY": "pat"}, dotenv=None)
    assert s.port == 9100 and s.api_key == "pat" and s.username == server.DEFAULT_USERNAME
    with pytest.raises(InputError, match="LABEL_STUDIO_PORT"):
        server.load_settings(tmp_path, env={"LABEL_STUDIO_PORT": "http"}, dotenv=None)


def test_generated_credentials_are_private_and_stable(tmp_path):
    s = server.ensure_credentials(server.load_settings(tmp_path, env={}, dotenv=None))
    assert len(s.user_token) == 40 and s.password and s.api_key == s.user_token
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    again = server.ensure_credentials(server.load_settings(tmp_path, env={}, dotenv=None))
    assert (again.user_token, again.password) == (s.user_token, s.password)
