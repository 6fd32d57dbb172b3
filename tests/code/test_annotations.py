import json

import pytest

from pipeline.annotations import choices_results, parse_task, read_export
from pipeline.errors import InputError


def task(results, task_id=7, **data):
    return {"id": task_id, "data": {"text": "Some passage.", "passage_id": "abc", **data},
            "annotations": [{"id": 1, "completed_by": 3, "result": results, "was_cancelled": False,
                             "updated_at": "2026-01-01T00:00:00Z"}]}


def test_round_trip_of_a_judgement(schema):
    results = choices_results(schema, ["strategic_partnership", "isolated_pariah"], "supportive")
    (record,) = parse_task(task(results), schema, "x.json")
    assert record.frames == {"strategic_partnership", "isolated_pariah"}
    assert record.stance == "supportive" and not record.off_topic and record.annotator == "3"


def test_keys_are_accepted_as_choice_values(schema):
    results = [{"from_name": "frames", "to_name": "text", "type": "choices", "value": {"choices": ["transactional"]}},
               {"from_name": "stance", "to_name": "text", "type": "choices", "value": {"choices": ["neutral"]}}]
    (record,) = parse_task(task(results), schema, "x.json")
    assert record.frames == {"transactional"} and record.stance == "neutral"


def test_off_topic_needs_no_stance(schema):
    (record,) = parse_task(task(choices_results(schema, [], None, off_topic=True)), schema, "x.json")
    assert record.off_topic and record.stance is None


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["annotations"][0]["result"][0]["value"].update(choices=["Friendship"]), "x.json: task 7, annotation 1: unknown frame label 'Friendship'"),
    (lambda t: t["annotations"][0]["result"][1]["value"].update(choices=["Hostile"]), "unknown stance label 'Hostile'"),
    (lambda t: t["annotations"][0]["result"][0].update(from_name="mood"), "unknown control 'mood'"),
    (lambda t: t["data"].pop("passage_id"), "x.json: task 7: missing field 'data.passage_id'"),
    (lambda t: t["annotations"][0].pop("completed_by"), "missing field 'completed_by'"),
    (lambda t: t["annotations"][0].update(result=[t["annotations"][0]["result"][0]]), "missing stance"),
])
def test_invalid_tasks_name_file_task_and_field(schema, mutate, message):
    t = task(choices_results(schema, ["transactional"], "neutral"))
    mutate(t)
    with pytest.raises(InputError, match=message):
        parse_task(t, schema, "x.json")


def test_malformed_export_file(tmp_path, schema):
    path = tmp_path / "export.json"
    path.write_text('[{"id": 1,\n "data": }]')
    with pytest.raises(InputError, match=r"export.json:2: malformed export"):
        read_export(path, schema)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(InputError, match="is a list of tasks"):
        read_export(path, schema)
