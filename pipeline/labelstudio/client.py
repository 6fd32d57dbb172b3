"""Talk to Label Studio through label-studio-sdk 2.x: connect, find or create the project, pull.

Every server call goes through the SDK's ``LabelStudio`` client inside ``api_errors``,
which turns transport and HTTP failures into ``LabelStudioError`` (an ``InputError``: the
CLI prints the message and exits 2). Local files are only ever replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from pipeline import annotations as ann_io
from pipeline.agreement import agreement_markdown, agreement_report
from pipeline.errors import InputError
from pipeline.fsutil import write_json, write_json_array, write_text
from pipeline.labels import label_config_xml
from pipeline.labelstudio import convert
from pipeline.schema import LabelSchema

if TYPE_CHECKING:
    from pipeline.config import LabelStudioParams

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

# Roles of the projects `framing labelstudio` keeps in its state file (.labelstudio/project.json).
ANNOTATION, ADJUDICATION = "project_id", "adjudication_project_id"


def read_project_state(path: Path) -> dict:
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        raise InputError(f"{path}: malformed project state; delete it to look the project up by title") from None
    return state if isinstance(state, dict) else {}


def stored_project_id(state_file: Path, url: str, role: str = ANNOTATION) -> int | None:
    state = read_project_state(state_file)
    return state.get(role) if state.get("url") == url and isinstance(state.get(role), int) else None


def _store_project_id(state_file: Path, url: str, role: str, project_id: int, title: str) -> None:
    state = read_project_state(state_file)
    if state.get("url") != url:
        state = {"url": url}
    state[role] = project_id
    state["title" if role == ANNOTATION else f"{role}_title"] = title
    write_json(state_file, state)


def get_project(ls, url: str, project_id: int):
    """The project, or ProjectGone when the id no longer exists on the server."""
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


def projects_titled(ls, url: str, title: str) -> list[int]:
    with api_errors(url, "listing projects"):
        return sorted(p.id for p in ls.projects.list(title=title) if p.title == title)


def find_project(ls, url: str, state_file: Path, title: str, *, role: str = ANNOTATION,
                 project_id: int | None = None) -> int | None:
    """The project to use: ``project_id`` if given, else the one stored for this server, else the
    one project with ``title``; None when there is none. Several with the title: InputError."""
    if project_id is not None:
        get_project(ls, url, project_id)
        return project_id
    stored = stored_project_id(state_file, url, role)
    if stored is not None:
        get_project(ls, url, stored)  # raises ProjectGone
        return stored
    same = projects_titled(ls, url, title)
    if len(same) > 1:
        raise LabelStudioError(f"{url} has {len(same)} projects titled {title!r} (ids {same}); choose one with "
                               "--project ID")
    if same:
        log.info("labelstudio: found project %d by title %r", same[0], title)
        return same[0]
    return None


def ensure_project(ls, url: str, state_file: Path, *, title: str, settings: Mapping[str, Any],
                   role: str = ANNOTATION, project_id: int | None = None, new_project: bool = False) -> tuple[int, bool]:
    """Find (``find_project``) or create the project and bring its settings up to date; returns (id, created).

    ``new_project`` creates one only when neither the stored project nor one with the title exists
    (after the old one was deleted on the server); it never makes a second project of one title.
    """
    found = None
    if new_project:
        stored = stored_project_id(state_file, url, role)
        if stored is not None:
            try:
                get_project(ls, url, stored)
                raise LabelStudioError(f"project {stored} still exists on {url}: push to it (drop --new-project), "
                                       "or delete it in Label Studio first")
            except ProjectGone:
                pass
        same = projects_titled(ls, url, title)
        if same:
            raise LabelStudioError(f"a project titled {title!r} exists on {url} (ids {same}): push to it with "
                                   "--project ID, or delete it in Label Studio first")
    else:
        found = find_project(ls, url, state_file, title, role=role, project_id=project_id)
    created = found is None
    if created:
        with api_errors(url, "creating the project"):
            found = ls.projects.create(title=title, **settings).id
    # the id is stored before anything else happens, so an interrupted push resumes in this project
    _store_project_id(state_file, url, role, found, title)
    if not created:
        with api_errors(url, f"updating project {found}"):
            ls.projects.update(id=found, title=title, **settings)
    return found, created


def project_settings(params: "LabelStudioParams", *, label_config: str, instructions: str) -> dict:
    """The project settings push keeps up to date: labeling config, instructions, overlap."""
    return dict(label_config=label_config, expert_instruction=instructions, show_instruction=True,
                show_skip_button=True, maximum_annotations=params.annotators_per_task,
                overlap_cohort_percentage=params.overlap_percent, show_overlap_first=True)


def task_dicts(ls, url: str, project_id: int) -> list[dict]:
    """Every task of the project (all fields), as plain dicts."""
    with api_errors(url, f"listing the tasks of project {project_id}"):
        return [t.model_dump(warnings=False) if hasattr(t, "model_dump") else dict(t)
                for t in ls.tasks.list(project=project_id, fields="all", page_size=500)]


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
    """Where a project's export lives: its ``.json.gz`` if one is there (pull keeps it compressed), else ``.json``."""
    path = Path(annotations_dir) / f"labelstudio_project_{project_id}.json"
    assert path.name != SEED_FILE
    compressed = path.with_name(path.name + ".gz")
    return compressed if compressed.exists() else path


def _read_local(path: Path) -> list[dict]:
    try:
        tasks = json.loads(ann_io.export_text(path))
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
         project_id: int | None = None, title: str | None = None, role: str = ANNOTATION,
         adjudicators: Sequence[str] = ()) -> PullSummary:
    """Export the project's annotations and merge them into labels/annotations/; write the agreement report
    (over every export there, adjudications excluded)."""
    project_id = find_project(ls, url, state_file, title or "", role=role, project_id=project_id) if (
        project_id or title or stored_project_id(state_file, url, role)) else None
    if project_id is None:
        raise LabelStudioError(f"no project for {url} in {state_file}; run `framing labelstudio push` first")
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
        write_json_array(path, merged)
    judgements = ann_io.latest_judgements(ann_io.read_exports(annotations_dir, schema, adjudicators))
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
