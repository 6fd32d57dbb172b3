"""What `framing labelstudio push` will do, decided without touching the server: ``plan_push``.

Given the ingested passages, the project's tasks as the server lists them, the passages already
annotated locally and the model's outputs, the plan says which tasks to import (in queue order,
with pre-annotations), which existing unlabelled tasks to re-prioritise or re-predict, which
passages changed text since their task was imported, and whether the project can switch to
uncertainty sampling. ``pipeline.labelstudio.client.push`` only executes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pipeline.labelstudio import active
from pipeline.labelstudio.convert import passage_locations, task_data
from pipeline.labelstudio.prediction import Labels, prediction, uncertainty


@dataclass
class TaskUpdate:
    """Changes to one existing, still unlabelled task."""

    task_id: int
    data: dict | None = None                 # new task data (priority changed), or None
    prediction: dict | None = None           # a prediction to add (the current model has none on it yet)
    remove_predictions: list[int] = field(default_factory=list)  # outdated predictions to delete first


@dataclass
class PushPlan:
    new_tasks: list[dict] = field(default_factory=list)      # import items {"data", "predictions"?}, queue order
    updates: list[TaskUpdate] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)        # passages whose text changed since their task
    skipped_existing: int = 0
    skipped_annotated: int = 0
    model_version: str | None = None
    uncertainty_sampling: bool = False  # predictions of model_version exist: order the queue by them

    @property
    def reprioritised(self) -> int:
        return sum(u.data is not None for u in self.updates)


def _pred_version(pred: Any) -> str | None:
    return pred.get("model_version") if isinstance(pred, Mapping) else None


def _pred_id(pred: Any) -> Any:
    """A task's prediction as the task list gives it: an object with an id, or the bare id."""
    return pred.get("id") if isinstance(pred, Mapping) else pred


def plan_push(passages: Sequence[Mapping], remote_tasks: Sequence[Mapping], annotated: set[str],
              model_outputs: Mapping[str, Mapping] | None = None, *, labels: Labels | None = None,
              model_version: str | None = None, import_changed: bool = False) -> PushPlan:
    """The push plan. ``model_outputs``: passage id → ``FramingModel.predict`` output (for at least
    every passage not annotated yet), with ``labels`` and ``model_version`` of that model; None
    pushes without predictions."""
    plan = PushPlan(model_version=model_version if model_outputs is not None else None)
    remote_by_pid: dict[str, Mapping] = {}
    for task in remote_tasks:
        remote_by_pid.setdefault((task.get("data") or {}).get("passage_id"), task)
    current = {p["id"] for p in passages}
    remote_at: dict[tuple, Mapping] = {}
    for task in remote_tasks:
        data = task.get("data") or {}
        if data.get("passage_id") not in current:
            remote_at[(data.get("doc_id"), data.get("paragraph_index"))] = task

    queued: list[tuple[Mapping, Mapping | None]] = []  # (passage, its existing task or None)
    for passage in passages:
        pid = passage["id"]
        if pid in annotated:
            plan.skipped_annotated += 1
            continue
        task = remote_by_pid.get(pid)
        if task is not None:
            plan.skipped_existing += 1
            if not task.get("total_annotations") and not task.get("annotations"):
                queued.append((passage, task))
            continue
        old = next((remote_at[loc] for loc in sorted(passage_locations(passage), key=str) if loc in remote_at), None)
        if old is not None:
            plan.changed.append({"task_id": old["id"], "passage_id": pid, "old_passage_id": old["data"].get("passage_id"),
                                 "doc_id": old["data"].get("doc_id"), "paragraph_index": old["data"].get("paragraph_index")})
            if not import_changed:
                continue
        queued.append((passage, None))

    outputs = [model_outputs[p["id"]] for p, _ in queued] if model_outputs is not None else None
    ranks = active.priorities([p.get("cluster_id") or p["id"] for p, _ in queued],
                              [uncertainty(o) for o in outputs] if outputs is not None else None)
    preds: list[dict | None] = [None] * len(queued)
    if outputs is not None:
        cluster_no: dict[str, int] = {}
        for i, ((passage, _), output) in enumerate(zip(queued, outputs)):
            preds[i] = prediction(output, labels, model_version)
            # Label Studio's uncertainty sampling spreads an annotator's queue over clusters
            preds[i]["cluster"] = cluster_no.setdefault(passage.get("cluster_id") or passage["id"], len(cluster_no) + 1)

    for rank, i in sorted((rank, i) for i, (rank, (_, task)) in enumerate(zip(ranks, queued)) if task is None):
        item: dict = {"data": task_data(queued[i][0], rank)}
        if preds[i] is not None:
            item["predictions"] = [preds[i]]
        plan.new_tasks.append(item)

    has_current = False
    for rank, pred, (passage, task) in zip(ranks, preds, queued):
        if task is None:
            continue
        update = TaskUpdate(task_id=task["id"])
        data = dict(task.get("data") or {})
        if data.get("priority") != rank:
            data["priority"] = rank
            update.data = data
        existing = task.get("predictions") or []
        if pred is not None:
            if any(_pred_version(p) == model_version for p in existing):
                has_current = True
            else:
                update.prediction = pred
                update.remove_predictions = [i for i in map(_pred_id, existing) if isinstance(i, int)]
        if update.data is not None or update.prediction is not None:
            plan.updates.append(update)
    predicted = any("predictions" in t for t in plan.new_tasks) or any(u.prediction for u in plan.updates)
    plan.uncertainty_sampling = bool(plan.model_version) and (predicted or has_current)
    return plan
