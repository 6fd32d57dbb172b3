"""`framing labelstudio push`: execute a push plan (``pipeline.labelstudio.plan``) against the server.

The model behind pre-annotations and the queue order is the registry's champion (what the API
serves), unless a model file is named. Its ``model_version`` label is ``<model name>@v<version>``
everywhere: on pushed predictions, on the ML backend's predictions and on the project.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.errors import InputError
from pipeline.labelstudio.client import (ANNOTATION, DEFAULT_TITLE, api_errors, ensure_project, task_dicts)
from pipeline.labelstudio.plan import PushPlan, plan_push
from pipeline.labelstudio.prediction import Labels, model_version_label
from pipeline.schema import LabelSchema

log = logging.getLogger(__name__)


@dataclass
class PushModel:
    """The model whose outputs pre-annotate and order the queue, with its ``model_version`` label."""

    model: Any
    version: str
    source: str


def champion_model(uri: str, model_name: str, alias: str) -> PushModel | None:
    """``model_name@alias`` from the registry, or None when there is no such alias yet."""
    from pipeline.registry import load_registered

    mv, model = load_registered(uri, model_name, alias)
    if mv is None:
        log.info("labelstudio: no %s@%s in %s yet; pushing without predictions", model_name, alias, uri)
        return None
    return PushModel(model, model_version_label(model_name, mv.version), f"{model_name}@{alias} = v{mv.version}")


def file_model(path: str | Path) -> PushModel:
    """A FramingModel file (not in the registry): versioned by its content, ``<name>@<sha256[:12]>``."""
    from pipeline.model import FramingModel

    path = Path(path)
    model = FramingModel.load(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return PushModel(model, f"{model.name}@{digest}", str(path))


def model_outputs(model: PushModel, passages: Sequence[Mapping], schema: LabelSchema) -> dict[str, dict]:
    """passage id → the model's output; InputError when the model's labels are not the schema's."""
    m = model.model
    if list(m.frame_names) != schema.frame_names or list(m.stance_names) != schema.stance_names:
        raise InputError(f"{model.source}: model labels {m.frame_names}/{m.stance_names} are not the label schema's "
                         f"{schema.frame_names}/{schema.stance_names}; retrain on the current schema, or push "
                         "without predictions (--no-model)")
    if not passages:
        return {}
    try:
        outputs = m.predict([p["text"] for p in passages])
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{model.source}: prediction failed ({type(exc).__name__}: {exc}); "
                         "push without predictions with --no-model") from None
    return {p["id"]: o for p, o in zip(passages, outputs)}


def read_passages(path: str | Path) -> list[dict]:
    from pipeline.dataset import read_passages as read

    return list(read(path).values())


def locally_annotated(directory: str | Path, schema: LabelSchema) -> set[str]:
    """Passage ids with at least one completed (non-cancelled) annotation under ``directory``."""
    from pipeline import annotations

    directory = Path(directory)
    if not directory.exists():
        return set()
    return {r.passage_id for r in annotations.read_exports(directory, schema) if not r.cancelled}


@dataclass
class PushSummary:
    project_id: int
    project_created: bool
    created: int = 0
    skipped_existing: int = 0
    skipped_annotated: int = 0
    changed: list[dict] = field(default_factory=list)
    predictions_created: int = 0
    predictions_retrieved: int = 0
    predictions_removed: int = 0
    reprioritised: int = 0
    model_version: str | None = None
    model_source: str | None = None
    backend: str | None = None

    def lines(self) -> list[str]:
        if not self.model_version:
            predictions = "predictions: none (no model)"
        elif self.backend:
            predictions = (f"predictions: {self.predictions_retrieved} retrieved from the ML backend {self.backend}, "
                           f"{self.predictions_removed} outdated removed (model_version {self.model_version})")
        else:
            predictions = (f"predictions: {self.predictions_created} created, {self.predictions_removed} outdated "
                           f"removed (model_version {self.model_version}, {self.model_source})")
        out = [f"project {self.project_id}{' (created)' if self.project_created else ''}",
               f"created {self.created} task(s); skipped {self.skipped_existing} already on the server and "
               f"{self.skipped_annotated} annotated locally", predictions,
               f"active-learning order: {self.reprioritised} existing task(s) re-prioritised"]
        if self.changed:
            acted = any(c["action"] != "none" for c in self.changed)
            out.append(f"changed passages: {len(self.changed)} (text changed since its task was imported"
                       + ("" if acted else "; re-run with --update-changed to bring the new text in") + "):")
            out += [f"  task {c['task_id']}{' (annotated)' if c['annotated'] else ''}: {c['doc_id']} "
                    f"¶{c['paragraph_index']}: {c['old_passage_id']} → {c['passage_id']}"
                    + (f": {c['action']}" if c["action"] != "none" else "") for c in self.changed]
        return out


def connected_backend(ls, url: str, project_id: int):
    """The ML backend record connected to the project, or None."""
    with api_errors(url, f"listing the ML backends of project {project_id}"):
        backends = list(ls.ml.list(project=project_id))
    return backends[0] if backends else None


def push(ls, url: str, *, state_file: Path, passages: Sequence[Mapping], annotated: set[str], schema: LabelSchema,
         settings: Mapping[str, Any], model: PushModel | None = None, title: str = DEFAULT_TITLE,
         project_id: int | None = None, new_project: bool = False, update_changed: bool = False,
         backend_api_key: str | None = None, batch_size: int = 200) -> PushSummary:
    """Create/update the project and import the passages not yet annotated, idempotently (``plan_push``).

    With an ML backend connected to the project, predictions are retrieved from it (it serves the
    champion) and named by the version it reports; otherwise ``model``'s pre-annotations are
    attached. ``model`` (when given) also orders the queue, least confident first.
    """
    from pipeline.labelstudio.mlbackend import backend_version

    pid, created = ensure_project(ls, url, state_file, title=title, settings=settings, role=ANNOTATION,
                                  project_id=project_id, new_project=new_project)
    backend = None if created else connected_backend(ls, url, pid)
    version = model.version if model else None
    if backend is not None:
        version = backend_version(backend.url, backend_api_key)
        if model is not None and model.version != version:
            log.warning("labelstudio: the ML backend serves %s but %s is %s; after `dvc repro`, restart "
                        "`framing serve` so annotators see the current champion", version, model.source, model.version)
        if backend.title != version:  # Label Studio names a live model by its backend's title
            with api_errors(url, f"updating ML backend {backend.id}"):
                ls.ml.update(id=backend.id, title=version)
    remote = task_dicts(ls, url, pid)
    outputs = model_outputs(model, [p for p in passages if p["id"] not in annotated], schema) if model else None
    plan = plan_push(passages, remote, annotated, outputs, labels=Labels.of_model(model.model) if model else None,
                     model_version=version, backend=backend is not None, update_changed=update_changed)
    summary = PushSummary(project_id=pid, project_created=created, model_version=plan.model_version,
                          model_source=model.source if model else None, backend=backend.url if backend else None,
                          skipped_existing=plan.skipped_existing, skipped_annotated=plan.skipped_annotated,
                          changed=plan.changed, reprioritised=plan.reprioritised)
    _import(ls, url, pid, plan, summary, batch_size)
    _update(ls, url, pid, plan, summary)
    if plan.uncertainty_sampling:  # Label Studio accepts a project model_version only once predictions carry it
        with api_errors(url, f"switching project {pid} to uncertainty sampling"):
            ls.projects.update(id=pid, model_version=plan.model_version, sampling="Uncertainty sampling")
    elif not plan.model_version:
        with api_errors(url, f"updating project {pid}"):
            ls.projects.update(id=pid, sampling="Sequential sampling")
    return summary


def _import(ls, url: str, pid: int, plan: PushPlan, summary: PushSummary, batch_size: int) -> None:
    """New tasks in queue order (so sequential sampling follows it too); predictions one by one after,
    because a bulk import drops each prediction's ``cluster``."""
    for start in range(0, len(plan.new_tasks), batch_size):
        items = [{"data": t["data"]} for t in plan.new_tasks[start:start + batch_size]]
        with api_errors(url, f"importing {len(items)} task(s)"):
            ls.projects.import_tasks(id=pid, request=items)
        summary.created += len(items)
        log.info("labelstudio: imported %d task(s)", len(items))
    if not plan.new_tasks or not plan.model_version:
        return
    by_pid = {t["data"]["passage_id"]: t["id"] for t in task_dicts(ls, url, pid)}
    ids = [by_pid[t["data"]["passage_id"]] for t in plan.new_tasks]
    if plan.backend:
        summary.predictions_retrieved += _retrieve(ls, url, pid, dict(zip(ids, plan.new_clusters)), plan.model_version)
        return
    for task_id, item in zip(ids, plan.new_tasks):
        _create_prediction(ls, url, task_id, item["predictions"][0], plan.model_version)
        summary.predictions_created += 1


def _update(ls, url: str, pid: int, plan: PushPlan, summary: PushSummary) -> None:
    retrieve: dict[int, int | None] = {}
    for update in plan.updates:
        if update.data is not None:
            with api_errors(url, f"updating task {update.task_id}"):
                ls.tasks.update(id=str(update.task_id), data=update.data)
        for pred_id in update.remove_predictions:
            with api_errors(url, f"removing outdated prediction {pred_id}"):
                ls.predictions.delete(id=pred_id)
            summary.predictions_removed += 1
        if update.retrieve:
            retrieve[update.task_id] = update.cluster
        elif update.prediction is not None:
            _create_prediction(ls, url, update.task_id, update.prediction, plan.model_version)
            summary.predictions_created += 1
    if retrieve:
        summary.predictions_retrieved += _retrieve(ls, url, pid, retrieve, plan.model_version)


def _create_prediction(ls, url: str, task_id: int, pred: Mapping, version: str) -> None:
    with api_errors(url, f"adding a prediction to task {task_id}"):
        ls.predictions.create(task=task_id, model_version=version, score=pred["score"], result=pred["result"],
                              request_options={"additional_body_parameters": {"cluster": pred["cluster"]}})


def _retrieve(ls, url: str, pid: int, clusters: Mapping[int, int | None], version: str, batch: int = 100) -> int:
    """Ask Label Studio to fetch predictions for these tasks from the project's ML backend, then give
    each its cluster number; returns how many tasks now have a prediction of ``version``."""
    ids = list(clusters)
    for start in range(0, len(ids), batch):
        with api_errors(url, f"retrieving predictions for {len(ids[start:start + batch])} task(s) from the ML backend"):
            ls.actions.create(id="retrieve_tasks_predictions", project=pid,
                              selected_items={"all": False, "included": ids[start:start + batch]})
    got = 0
    for task_id, cluster in clusters.items():
        with api_errors(url, f"reading the predictions of task {task_id}"):
            preds = [p for p in ls.predictions.list(task=task_id) if p.model_version == version]
        if not preds:
            continue
        got += 1
        if cluster is not None:
            with api_errors(url, f"setting the cluster of prediction {preds[0].id}"):
                ls.predictions.update(id=preds[0].id, request_options={"additional_body_parameters": {"cluster": cluster}})
    if got < len(ids):
        log.warning("labelstudio: the ML backend gave no prediction of %s for %d task(s); is it serving that "
                    "version? (`framing serve`, then push again)", version, len(ids) - got)
    return got
