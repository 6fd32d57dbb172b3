"""Talk to Label Studio through label-studio-sdk 2.x: connect, project, push, pull.

Every server call goes through the SDK's ``LabelStudio`` client inside ``api_errors``,
which turns transport and HTTP failures into ``LabelStudioError`` (an ``InputError``: the
CLI prints the message and exits 2). Local files are only ever replaced atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pipeline import annotations as ann_io
from pipeline.agreement import agreement_markdown, agreement_report
from pipeline.errors import InputError
from pipeline.fsutil import write_json, write_text
from pipeline.labels import label_config_xml
from pipeline.labelstudio import convert
from pipeline.labelstudio.plan import plan_push
from pipeline.labelstudio.prediction import Labels
from pipeline.schema import LabelSchema

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Framing: Russia–North Korea passages"
SEED_FILE = "seed_annotations.json"


class LabelStudioError(InputError):
    """A Label Studio call failed in a way the user can act on."""


class Unreachable(LabelStudioError):
    pass


class AuthError(LabelStudioError):
    pass


class ProjectGone(LabelStudioError):
    pass


@contextlib.contextmanager
def api_errors(url: str, doing: str) -> Iterator[None]:
    """Translate SDK/transport exceptions into LabelStudioError with a hint."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except httpx.TimeoutException:
        raise Unreachable(f"{doing}: Label Studio at {url} timed out; is it overloaded? "
                          "(`framing labelstudio status`)") from None
    except httpx.TransportError as exc:
        raise Unreachable(f"{doing}: cannot reach Label Studio at {url} ({type(exc).__name__}); start it with "
                          "`framing labelstudio start` or set LABEL_STUDIO_URL") from None
    except ApiError as exc:
        body = exc.body
        detail = body if not isinstance(body, dict) else (
            f"{body.get('detail')} {json.dumps(body['validation_errors'])}" if body.get("validation_errors")
            else body.get("detail", body))
        if exc.status_code in (401, 403):
            raise AuthError(f"{doing}: Label Studio at {url} rejected the API token ({exc.status_code}: {detail}); "
                            "set LABEL_STUDIO_API_KEY to a legacy token or personal access token of an admin "
                            "(Account & Settings), or remove it to use the token `start` stored") from None
        raise LabelStudioError(f"{doing}: Label Studio at {url} answered {exc.status_code}: "
                               f"{str(detail)[:500]}") from None


def connect(url: str, api_key: str, timeout: float = 60.0):
    """An authenticated SDK client; checks the token with one `whoami` call."""
    from label_studio_sdk.client import LabelStudio

    if not api_key:
        raise AuthError("no Label Studio API token: set LABEL_STUDIO_API_KEY (legacy token or personal access "
                        "token), or run `framing labelstudio start`, which creates and stores one")
    with api_errors(url, "connecting"):
        client = LabelStudio(base_url=url, api_key=api_key, timeout=timeout)
        client.users.whoami()
    return client


# -- project -------------------------------------------------------------------------------

def read_project_state(path: Path) -> dict:
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        raise InputError(f"{path}: malformed project state; delete it to look the project up by title") from None
    return state if isinstance(state, dict) else {}


def stored_project_id(state_file: Path, url: str) -> int | None:
    state = read_project_state(state_file)
    return state.get("project_id") if state.get("url") == url and isinstance(state.get("project_id"), int) else None


def get_project(ls, url: str, project_id: int):
    """The project, or ProjectGone when the stored id no longer exists on the server."""
    from label_studio_sdk.core.api_error import ApiError

    try:
        with api_errors(url, f"reading project {project_id}"):
            try:
                return ls.projects.get(id=project_id)
            except ApiError as exc:
                if exc.status_code == 404:
                    raise ProjectGone(project_id) from None
                raise
    except ProjectGone:
        raise ProjectGone(f"project {project_id} no longer exists on {url} (deleted on the server?); run "
                          "`framing labelstudio push --new-project` to create it again and re-import the passages "
                          "(pulled annotations stay in labels/annotations/)") from None


def ensure_project(ls, url: str, state_file: Path, *, title: str, label_config: str, instructions: str,
                   model_version: str | None, new_project: bool = False) -> tuple[int, bool]:
    """Create the project (or find it) and bring its settings up to date; returns (id, created)."""
    settings = dict(title=title, label_config=label_config, expert_instruction=instructions,
                    show_instruction=True, show_skip_button=True)
    if not model_version:  # with a model, push switches to uncertainty sampling once the predictions exist
        settings["sampling"] = "Sequential sampling"
    project_id = None if new_project else stored_project_id(state_file, url)
    created = False
    if project_id is not None:
        get_project(ls, url, project_id)  # raises ProjectGone
    elif not new_project:
        with api_errors(url, "listing projects"):
            same = [p.id for p in ls.projects.list(title=title) if p.title == title] if title else []
        if len(same) == 1:
            project_id = same[0]
            log.info("labelstudio: found project %d by title", project_id)
    if project_id is None:
        with api_errors(url, "creating the project"):
            project_id = ls.projects.create(**settings).id
        created = True
    # the id is stored before anything else happens, so an interrupted push resumes in this project
    write_json(state_file, {"url": url, "project_id": project_id, "title": title})
    if not created:
        with api_errors(url, f"updating project {project_id}"):
            ls.projects.update(id=project_id, **settings)
    return project_id, created


# -- model ---------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    model: Any
    version: str
    path: Path


def load_model(path: str | Path | None) -> LoadedModel | None:
    """The trained FramingModel and its version (``name@sha256[:12]`` of the file), or None when absent."""
    if not path:
        return None
    path = Path(path)
    if not path.exists():
        log.info("labelstudio: no model at %s; pushing without predictions", path)
        return None
    from pipeline.model import FramingModel

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    model = FramingModel.load(path)
    return LoadedModel(model=model, version=f"{model.name}@{digest}", path=path)


def model_outputs(model: LoadedModel, passages: Sequence[Mapping], schema: LabelSchema) -> dict[str, dict]:
    """passage id → the model's output, for ``passages``; InputError when the model's labels are not the schema's."""
    if list(model.model.frame_names) != schema.frame_names or list(model.model.stance_names) != schema.stance_names:
        raise InputError(f"{model.path}: model labels {model.model.frame_names}/{model.model.stance_names} are not "
                         f"the label schema's {schema.frame_names}/{schema.stance_names}; retrain the model on the "
                         "current schema, or push without predictions (--no-model)")
    if not passages:
        return {}
    try:
        outputs = model.model.predict([p["text"] for p in passages])
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{model.path}: prediction failed ({type(exc).__name__}: {exc}); "
                         "push without predictions with --no-model") from None
    return {p["id"]: o for p, o in zip(passages, outputs)}


# -- push ----------------------------------------------------------------------------------

def read_passages(path: str | Path) -> list[dict]:
    from pipeline.dataset import read_passages as read

    return list(read(path).values())


def locally_annotated(directory: str | Path, schema: LabelSchema) -> set[str]:
    """Passage ids with at least one completed (non-cancelled) annotation under ``directory``."""
    directory = Path(directory)
    if not directory.exists():
        return set()
    return {r.passage_id for r in ann_io.read_exports(directory, schema) if not r.cancelled}


def _task_dicts(ls, url: str, project_id: int) -> list[dict]:
    with api_errors(url, f"listing the tasks of project {project_id}"):
        return [t.model_dump(warnings=False) if hasattr(t, "model_dump") else dict(t)
                for t in ls.tasks.list(project=project_id, fields="all", page_size=500)]


@dataclass
class PushSummary:
    project_id: int
    project_created: bool
    created: int = 0
    skipped_existing: int = 0
    skipped_annotated: int = 0
    changed: list[dict] = field(default_factory=list)
    predictions_created: int = 0
    predictions_removed: int = 0
    reprioritised: int = 0
    model_version: str | None = None

    def lines(self) -> list[str]:
        out = [f"project {self.project_id}{' (created)' if self.project_created else ''}",
               f"created {self.created} task(s); skipped {self.skipped_existing} already on the server and "
               f"{self.skipped_annotated} annotated locally",
               (f"predictions: {self.predictions_created} created, {self.predictions_removed} outdated removed "
                f"(model_version {self.model_version})" if self.model_version else "predictions: none (no model)"),
               f"active-learning order: {self.reprioritised} existing task(s) re-prioritised"]
        if self.changed:
            out.append(f"changed passages: {len(self.changed)} (text changed since its task was imported; not "
                       "imported, re-run with --import-changed to add the new text as a new task):")
            out += [f"  task {c['task_id']}: {c['doc_id']} ¶{c['paragraph_index']}: {c['old_passage_id']} → "
                    f"{c['passage_id']}" for c in self.changed]
        return out


def push(ls, url: str, *, state_file: Path, passages: Sequence[Mapping], annotated: set[str], schema: LabelSchema,
         label_config: str, instructions: str, model: LoadedModel | None = None, title: str = DEFAULT_TITLE,
         new_project: bool = False, import_changed: bool = False, batch_size: int = 200) -> PushSummary:
    """Create/update the project and import the passages not yet annotated, idempotently (``plan_push``)."""
    version = model.version if model else None
    project_id, created = ensure_project(ls, url, state_file, title=title, label_config=label_config,
                                         instructions=instructions, model_version=version, new_project=new_project)
    remote = _task_dicts(ls, url, project_id)
    outputs = None
    if model:
        outputs = model_outputs(model, [p for p in passages if p["id"] not in annotated], schema)
    plan = plan_push(passages, remote, annotated, outputs, labels=Labels.of_model(model.model) if model else None,
                     model_version=version, import_changed=import_changed)
    summary = PushSummary(project_id=project_id, project_created=created, model_version=plan.model_version,
                          skipped_existing=plan.skipped_existing, skipped_annotated=plan.skipped_annotated,
                          changed=plan.changed, reprioritised=plan.reprioritised)
    for start in range(0, len(plan.new_tasks), batch_size):
        items = plan.new_tasks[start:start + batch_size]
        with api_errors(url, f"importing {len(items)} task(s)"):
            result = ls.projects.import_tasks(id=project_id, request=items, return_task_ids=True)
        summary.created += len(items)
        summary.predictions_created += sum("predictions" in it for it in items)
        log.info("labelstudio: imported %d task(s) (%s)", len(items), getattr(result, "task_count", "?"))
    for update in plan.updates:
        if update.data is not None:
            with api_errors(url, f"updating task {update.task_id}"):
                ls.tasks.update(id=str(update.task_id), data=update.data)
        if update.prediction is None:
            continue
        for pred_id in update.remove_predictions:
            with api_errors(url, f"removing outdated prediction {pred_id}"):
                ls.predictions.delete(id=pred_id)
            summary.predictions_removed += 1
        pred = update.prediction
        with api_errors(url, f"adding a prediction to task {update.task_id}"):
            ls.predictions.create(task=update.task_id, model_version=version, score=pred["score"],
                                  result=pred["result"],
                                  request_options={"additional_body_parameters": {"cluster": pred["cluster"]}})
        summary.predictions_created += 1
    if plan.uncertainty_sampling:  # Label Studio accepts a project model_version only once predictions carry it
        with api_errors(url, f"switching project {project_id} to uncertainty sampling"):
            ls.projects.update(id=project_id, model_version=version, sampling="Uncertainty sampling")
    return summary


# -- pull ----------------------------------------------------------------------------------

@dataclass
class PullSummary:
    project_id: int
    path: Path
    exported_tasks: int
    counts: dict
    agreement: dict

    def lines(self) -> list[str]:
        c = self.counts
        return [f"project {self.project_id}: {self.exported_tasks} task(s) exported",
                f"{self.path}: {c['tasks']} annotated task(s); annotations {c['added']} new, {c['updated']} changed "
                f"(previous versions kept in 'history'), {c['unchanged']} unchanged, {c['kept_local_only']} kept "
                "although the server no longer has them",
                f"agreement: {self.agreement['passages_with_2plus_annotators']} passage(s) with 2+ annotators, "
                f"{len(self.agreement['disagreements'])} disagreement(s)"]


def export_path(annotations_dir: str | Path, project_id: int) -> Path:
    path = Path(annotations_dir) / f"labelstudio_project_{project_id}.json"
    assert path.name != SEED_FILE
    return path


def _read_local(path: Path) -> list[dict]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed local export ({exc.msg}); restore it from git before "
                         "pulling, so no annotation is lost") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: a Label Studio JSON export is a list of tasks")
    return tasks


def pull(ls, url: str, *, state_file: Path, annotations_dir: str | Path, schema: LabelSchema,
         agreement_json: str | Path, agreement_md: str | Path, passages: Mapping[str, Mapping] | None = None,
         project_id: int | None = None) -> PullSummary:
    """Export the project's annotations and merge them into labels/annotations/; write the agreement report."""
    project_id = project_id or stored_project_id(state_file, url)
    if project_id is None:
        raise LabelStudioError(f"no project for {url} in {state_file}; run `framing labelstudio push` first")
    get_project(ls, url, project_id)
    with api_errors(url, f"exporting project {project_id}"):
        exported = ls.projects.exports.as_json(project_id)
        users = {u.id: u.email for u in ls.users.list()}
    if not isinstance(exported, list):
        raise LabelStudioError(f"exporting project {project_id}: expected a list of tasks, got {type(exported).__name__}")
    where = f"{url} project {project_id}"
    remote = [convert.normalise_task(t, users) for t in exported]
    for task in remote:  # a label outside the schema stops the pull before anything is written
        try:
            ann_io.parse_task(task, schema, where)
        except InputError as exc:
            raise LabelStudioError(f"{exc}; fix the annotation in Label Studio or update configs/labels.yaml "
                                   "(nothing was written)") from None
    path = export_path(annotations_dir, project_id)
    local = _read_local(path)
    merged, counts = convert.merge_exports(local, remote)
    for task in merged:
        ann_io.parse_task(task, schema, str(path))
    if merged or path.exists():
        write_json(path, merged)
    judgements = ann_io.latest_judgements(ann_io.read_exports(annotations_dir, schema))
    report = agreement_report(judgements, schema)
    write_json(agreement_json, report)
    write_text(agreement_md, agreement_markdown(report, passages))
    return PullSummary(project_id=project_id, path=path, exported_tasks=len(exported), counts=counts, agreement=report)


def check_label_config(path: str | Path, schema: LabelSchema) -> str:
    """The label config file, which must be the one rendered from the schema (else: run `framing labels`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: label config not found; run `framing labels`") from None
    if text != label_config_xml(schema):
        raise InputError(f"{path}: out of date with configs/labels.yaml; run `framing labels` (or `dvc repro labels`)")
    return text
