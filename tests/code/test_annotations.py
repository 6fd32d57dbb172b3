import gzip
import json

import pytest

from pipeline.annotations import choices_results, parse_task, read_export, read_exports
from pipeline.errors import InputError
from pipeline.fsutil import write_json_array


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


def test_a_compressed_export_reads_as_the_plain_one_and_writes_the_same_bytes(schema, tmp_path):
    tasks = [task(choices_results(schema, ["transactional"], "critical"), task_id=i) for i in (1, 2)]
    plain, packed = tmp_path / "plain" / "p.json", tmp_path / "packed" / "p.json.gz"
    write_json_array(plain, tasks)
    write_json_array(packed, tasks)
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    first = packed.read_bytes()
    write_json_array(packed, tasks)
    assert packed.read_bytes() == first  # no time stamp in the header: git sees no change
    strip = lambda records: [(r.passage_id, r.frames, r.stance) for r in records]
    assert strip(read_exports(packed.parent, schema)) == strip(read_exports(plain.parent, schema))
    assert len(read_exports(packed.parent, schema)) == 2


def test_one_export_in_both_forms_or_a_broken_gzip_is_refused(schema, tmp_path):
    tasks = [task(choices_results(schema, ["transactional"], "critical"))]
    write_json_array(tmp_path / "p.json", tasks)
    write_json_array(tmp_path / "p.json.gz", tasks)
    with pytest.raises(InputError, match=r"p\.json and .*p\.json\.gz: the same export twice"):
        read_exports(tmp_path, schema)
    (tmp_path / "p.json").unlink()
    (tmp_path / "p.json.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"p\.json\.gz: not a readable gzip file"):
        read_exports(tmp_path, schema)
