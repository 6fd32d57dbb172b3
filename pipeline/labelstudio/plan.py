"""What `framing labelstudio push` will do, decided without touching the server: ``plan_push``.

Given the ingested passages, the project's tasks as the server lists them, the passages already
annotated locally and the model's outputs, the plan says which tasks to import (in queue order),
which existing unlabelled tasks to re-prioritise, re-predict or re-text, which passages changed
text since their task was imported, and which predictions to ask the ML backend for.
``pipeline.labelstudio.client.push`` only executes it.

Two ways predictions reach the tasks (``backend``):

- no ML backend connected: push attaches the model's pre-annotations itself;
- an ML backend connected (`framing labelstudio connect-model`): tasks go in without predictions,
  and push asks Label Studio to retrieve them from the backend ("retrieve predictions"), so every
  prediction comes from the served champion and carries its ``model_version``; a task created
  later is predicted live when an annotator opens it.

Either way each prediction gets its passage's near-duplicate ``cluster`` number, which Label
Studio's uncertainty sampling uses to spread an annotator's queue over clusters.
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
    data: dict | None = None                 # new task data (priority or text changed), or None
    prediction: dict | None = None           # a prediction to add (the current model has none on it yet)
    remove_predictions: list[int] = field(default_factory=list)  # outdated predictions to delete first
    retrieve: bool = False                   # ask the ML backend for a prediction (backend mode)
    cluster: int | None = None               # its passage's cluster number (for the backend's prediction)


@dataclass
class PushPlan:
    new_tasks: list[dict] = field(default_factory=list)      # import items {"data", "predictions"?}, queue order
    new_clusters: list[int] = field(default_factory=list)    # cluster number per new task
    updates: list[TaskUpdate] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)        # passages whose text changed since their task
    skipped_existing: int = 0
    skipped_annotated: int = 0
    model_version: str | None = None
    backend: bool = False
    uncertainty_sampling: bool = False  # predictions of model_version exist: order the queue by them

    @property
    def reprioritised(self) -> int:
        return sum(u.data is not None for u in self.updates)


def _pred_version(pred: Any) -> str | None:
    return pred.get("model_version") if isinstance(pred, Mapping) else None


def _pred_id(pred: Any) -> Any:
    """A task's prediction as the task list gives it: an object with an id, or the bare id."""
    return pred.get("id") if isinstance(pred, Mapping) else pred


def _labelled(task: Mapping) -> bool:
    return bool(task.get("total_annotations") or task.get("annotations"))


def plan_push(passages: Sequence[Mapping], remote_tasks: Sequence[Mapping], annotated: set[str],
              model_outputs: Mapping[str, Mapping] | None = None, *, labels: Labels | None = None,
              model_version: str | None = None, backend: bool = False, update_changed: bool = False) -> PushPlan:
    """The push plan.

    ``model_outputs``: passage id → ``FramingModel.predict`` output for at least every passage not
    annotated yet (they order the queue), with ``labels`` and ``model_version`` of that model;
    None pushes without predictions. ``backend``: an ML backend serving ``model_version`` is
    connected, so predictions are retrieved from it rather than attached. ``update_changed``: a
    passage whose text changed gets the new text in its old task when that task is unlabelled, or
    a new task when it is labelled (its annotations stay, and the dataset reports them as stale);
    otherwise changed passages are only reported.
    """
    predicting = model_outputs is not None
    plan = PushPlan(model_version=model_version if predicting or backend else None, backend=backend)
    remote_by_pid: dict[str, Mapping] = {}
    for task in remote_tasks:
        remote_by_pid.setdefault((task.get("data") or {}).get("passage_id"), task)
    current = {p["id"] for p in passages}
    remote_at: dict[tuple, Mapping] = {}
    for task in remote_tasks:
        data = task.get("data") or {}
        if data.get("passage_id") not in current:
            remote_at[(data.get("doc_id"), data.get("paragraph_index"))] = task

    queued: list[tuple[Mapping, Mapping | None, bool]] = []  # (passage, existing task or None, text changed)
    for passage in passages:
        pid = passage["id"]
        if pid in annotated:
            plan.skipped_annotated += 1
            continue
        task = remote_by_pid.get(pid)
        if task is not None:
            plan.skipped_existing += 1
            if not _labelled(task):
                queued.append((passage, task, False))
            continue
        old = next((remote_at[loc] for loc in sorted(passage_locations(passage), key=str) if loc in remote_at), None)
        if old is None:
            queued.append((passage, None, False))
            continue
        old_pid = old["data"].get("passage_id")
        labelled = _labelled(old) or old_pid in annotated
        plan.changed.append({"task_id": old["id"], "passage_id": pid, "old_passage_id": old_pid,
                             "doc_id": old["data"].get("doc_id"), "paragraph_index": old["data"].get("paragraph_index"),
                             "annotated": labelled,
                             "action": ("none" if not update_changed else
                                        "new task (the old one keeps its annotations)" if labelled else
                                        "task updated with the new text")})
        if update_changed:
            queued.append((passage, None if labelled else old, not labelled))

    outputs = [model_outputs[p["id"]] for p, _, _ in queued] if predicting else None
    ranks = active.priorities([p.get("cluster_id") or p["id"] for p, _, _ in queued],
                              [uncertainty(o) for o in outputs] if outputs is not None else None)
    cluster_no: dict[str, int] = {}
    clusters = [cluster_no.setdefault(p.get("cluster_id") or p["id"], len(cluster_no) + 1) for p, _, _ in queued]
    preds: list[dict | None] = [None] * len(queued)
    if outputs is not None and not backend:
        for i, output in enumerate(outputs):
            preds[i] = {**prediction(output, labels, model_version), "cluster": clusters[i]}

    for rank, i in sorted((rank, i) for i, (rank, (_, task, _)) in enumerate(zip(ranks, queued)) if task is None):
        item: dict = {"data": task_data(queued[i][0], rank)}
        if preds[i] is not None:
            item["predictions"] = [preds[i]]
        plan.new_tasks.append(item)
        plan.new_clusters.append(clusters[i])

    has_current = False
    for rank, pred, cluster, (passage, task, retext) in zip(ranks, preds, clusters, queued):
        if task is None:
            continue
        update = TaskUpdate(task_id=task["id"], cluster=cluster)
        data = dict(task.get("data") or {})
        if retext:
            data = task_data(passage, rank)
        if data.get("priority") != rank or retext:
            data["priority"] = rank
            update.data = data
        there = task.get("predictions") or []
        if retext:  # predictions of the old text are wrong for the new one
            update.remove_predictions = [i for i in map(_pred_id, there) if isinstance(i, int)]
            current_there = False
        else:
            current_there = any(_pred_version(p) == model_version for p in there)
            if plan.model_version and not current_there:
                update.remove_predictions = [i for p in there if _pred_version(p) != model_version
                                             for i in [_pred_id(p)] if isinstance(i, int)]
        has_current = has_current or current_there
        if plan.model_version and not current_there:
            if backend:
                update.retrieve = True
            elif pred is not None:
                update.prediction = pred
        if update.data is not None or update.prediction is not None or update.retrieve or update.remove_predictions:
            plan.updates.append(update)
    predicted = any("predictions" in t for t in plan.new_tasks) or any(u.prediction or u.retrieve for u in plan.updates)
    plan.uncertainty_sampling = bool(plan.model_version) and (predicted or has_current or (backend and bool(plan.new_tasks)))
    return plan
