"""Label Studio conversions, merge rules, agreement and active-learning order (no server)."""


import pytest

from pipeline.annotations import parse_task
from pipeline.errors import InputError
from pipeline.labels import label_config_xml
from pipeline.labelstudio import active, convert, server
from tests.exports import ann, task
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


def test_an_export_stored_compressed_is_pulled_into_in_place(tmp_path):
    (tmp_path / "labelstudio_project_3.json.gz").write_bytes(b"")
    assert export_path(tmp_path, 3).name == "labelstudio_project_3.json.gz"
    assert export_path(tmp_path, 4).name == "labelstudio_project_4.json"


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
