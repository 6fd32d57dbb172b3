"""plan_push: what a push does, decided without a server."""

from __future__ import annotations

import re

import pytest

from pipeline.labelstudio.plan import plan_push
from pipeline.labelstudio.prediction import Labels

LABELS = Labels(("isolated_pariah", "transactional", "strategic_partnership"), ("critical", "neutral", "supportive"),
                {"isolated_pariah": "Isolated pariah", "transactional": "Transactional",
                 "strategic_partnership": "Strategic partnership", "critical": "Critical", "neutral": "Neutral",
                 "supportive": "Supportive"})


def passage(pid, index, cluster=None, doc="d1"):
    return {"id": pid, "text": f"text of {pid}", "doc_id": doc, "paragraph_index": index, "date": "",
            "cluster_id": cluster or pid, "sources": [{"doc_id": doc, "paragraph_index": index}]}


def output(p_frame: float, stance=(0.2, 0.6, 0.2)) -> dict:
    frames = {"isolated_pariah": p_frame, "transactional": 0.1, "strategic_partnership": 0.1}
    return {"frames": frames, "decided_frames": [f for f, p in frames.items() if p >= 0.5],
            "stance": LABELS.stance_names[stance.index(max(stance))],
            "stance_scores": dict(zip(LABELS.stance_names, stance)), "evidence": {}}


def remote(task_id, p, annotations=(), predictions=(), priority=None):
    data = {"text": p["text"], "passage_id": p["id"], "doc_id": p["doc_id"], "paragraph_index": p["paragraph_index"]}
    if priority is not None:
        data["priority"] = priority
    return {"id": task_id, "data": data, "annotations": list(annotations), "total_annotations": len(annotations),
            "predictions": list(predictions)}


P = [passage("a", 0), passage("b", 1), passage("c", 2), passage("d", 3)]
# b is the most uncertain (0.5 is a coin toss), then c, then a and d
OUT = {"a": output(0.02), "b": output(0.5, (0.34, 0.33, 0.33)), "c": output(0.3), "d": output(0.01)}


def test_without_a_model_new_passages_are_imported_in_passage_order_without_predictions():
    plan = plan_push(P, [], annotated={"d"})
    assert [t["data"]["passage_id"] for t in plan.new_tasks] == ["a", "b", "c"]
    assert [t["data"]["priority"] for t in plan.new_tasks] == [1, 2, 3]
    assert not any("predictions" in t for t in plan.new_tasks)
    assert plan.skipped_annotated == 1 and plan.model_version is None and not plan.uncertainty_sampling


def test_with_a_model_the_least_confident_come_first_with_their_prediction():
    plan = plan_push(P, [], set(), OUT, labels=LABELS, model_version="m@1")
    assert [t["data"]["passage_id"] for t in plan.new_tasks] == ["b", "c", "a", "d"]
    scores = [t["predictions"][0]["score"] for t in plan.new_tasks]
    assert scores == sorted(scores) and all(t["predictions"][0]["model_version"] == "m@1" for t in plan.new_tasks)
    assert plan.uncertainty_sampling


def test_existing_unlabelled_tasks_get_a_new_priority_and_the_current_models_prediction():
    tasks = [remote(11, P[0], priority=1, predictions=[{"id": 5, "model_version": "m@0"}]),
             remote(12, P[1], priority=1, predictions=[{"id": 6, "model_version": "m@1"}]),
             remote(13, P[2], annotations=[{"id": 1}])]  # labelled on the server: left alone
    plan = plan_push(P, tasks, set(), OUT, labels=LABELS, model_version="m@1")
    assert plan.skipped_existing == 3 and [t["data"]["passage_id"] for t in plan.new_tasks] == ["d"]
    by_task = {u.task_id: u for u in plan.updates}
    assert set(by_task) == {11}  # 12 already has m@1's prediction and priority 1
    assert by_task[11].remove_predictions == [5] and by_task[11].prediction["model_version"] == "m@1"
    assert by_task[11].data["priority"] == 2 and plan.reprioritised == 1


def test_a_changed_unlabelled_passage_is_reported_and_retexted_in_place_only_when_asked():
    old = passage("a-old", 0)
    tasks = [remote(21, old, predictions=[{"id": 9, "model_version": "m@1"}])]
    plan = plan_push(P[:1], tasks, set(), OUT, labels=LABELS, model_version="m@1")
    assert plan.new_tasks == [] and plan.updates == [] and plan.changed == [
        {"task_id": 21, "passage_id": "a", "old_passage_id": "a-old", "doc_id": "d1", "paragraph_index": 0,
         "annotated": False, "action": "none"}]
    plan = plan_push(P[:1], tasks, set(), OUT, labels=LABELS, model_version="m@1", update_changed=True)
    (update,) = plan.updates
    assert plan.new_tasks == [] and update.task_id == 21
    assert update.data["passage_id"] == "a" and update.data["text"] == P[0]["text"]
    assert update.remove_predictions == [9] and update.prediction["model_version"] == "m@1"  # the old text's
    assert plan.changed[0]["action"] == "task updated with the new text"


def test_a_changed_annotated_passage_keeps_its_task_and_gets_a_new_one_only_when_asked():
    old = passage("a-old", 0)
    for tasks, local in (([remote(21, old, annotations=[{"id": 1}])], set()), ([remote(21, old)], {"a-old"})):
        plan = plan_push(P[:1], tasks, local)
        assert plan.new_tasks == [] and plan.changed[0]["annotated"] is True
        plan = plan_push(P[:1], tasks, local, update_changed=True)
        assert [t["data"]["passage_id"] for t in plan.new_tasks] == ["a"] and plan.updates == []
        assert plan.changed[0]["action"].startswith("new task")


def test_with_a_backend_connected_tasks_go_in_bare_and_predictions_are_retrieved():
    tasks = [remote(11, P[0], predictions=[{"id": 5, "model_version": "m@0"}]),
             remote(12, P[1], predictions=[{"id": 6, "model_version": "m@1"}])]
    plan = plan_push(P, tasks, set(), OUT, labels=LABELS, model_version="m@1", backend=True)
    assert not any("predictions" in t for t in plan.new_tasks)
    assert [t["data"]["passage_id"] for t in plan.new_tasks] == ["c", "d"] and len(plan.new_clusters) == 2
    by_task = {u.task_id: u for u in plan.updates}
    assert by_task[11].retrieve and by_task[11].remove_predictions == [5] and by_task[11].prediction is None
    assert 12 not in by_task or not by_task[12].retrieve  # already has the served version's prediction
    assert plan.uncertainty_sampling
    # even with no local model to order the queue, the backend's version names the predictions
    plan = plan_push(P, tasks, set(), None, model_version="m@1", backend=True)
    assert plan.model_version == "m@1" and plan.updates[0].retrieve


def test_near_duplicates_are_kept_apart_in_the_queue():
    passages = [passage("x1", 0, cluster="x"), passage("x2", 1, cluster="x"), passage("y", 2)]
    outputs = {"x1": output(0.5), "x2": output(0.5), "y": output(0.3)}
    plan = plan_push(passages, [], set(), outputs, labels=LABELS, model_version="m@1")
    assert [t["data"]["passage_id"] for t in plan.new_tasks] == ["x1", "y", "x2"]
    clusters = [t["predictions"][0]["cluster"] for t in plan.new_tasks]
    assert clusters[0] == clusters[2] != clusters[1]


def test_a_model_output_with_unknown_labels_stops_the_plan():
    from pipeline.labelstudio.prediction import LabelMismatch

    bad = {**OUT, "a": {**OUT["a"], "stance": "hostile", "stance_scores": {"hostile": 1.0}}}
    with pytest.raises(LabelMismatch):
        plan_push(P, [], set(), bad, labels=LABELS, model_version="m@1")


@pytest.mark.parametrize("raw, message", [
    ({"title": "x" * 51}, "labelstudio.title: expected 1 to 50 characters, got 51"),
    ({"adjudication_title": ""}, "labelstudio.adjudication_title: expected 1 to 50 characters, got 0"),
    ({"overlap_percent": 150}, "labelstudio.overlap_percent"),
])
def test_labelstudio_params_name_the_bad_field(raw, message):
    """Label Studio answers 400 for project titles over 50 characters: say so before any server call."""
    from pipeline.config import LabelStudioParams
    from pipeline.errors import InputError
    from pipeline.typed import build

    with pytest.raises(InputError, match=re.escape(message)):
        build(LabelStudioParams, raw, "labelstudio")
