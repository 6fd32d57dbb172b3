"""Pure conversions between the pipeline and Label Studio: no network, no files.

- passages → task data; model outputs → predictions (pre-annotations) with
  ``model_version`` and ``score``;
- a Label Studio JSON export + the local copy → the merged local copy (merge rules below);
- annotation records → the agreement report (JSON metrics and Markdown).

Merge rules (``merge_exports``), keyed by passage id and annotator:

1. nothing local is ever dropped: a task or annotation the server no longer has stays;
2. an annotation new on the server is added; one whose content (result, cancelled flag)
   changed replaces the local one, which moves into the annotation's ``history`` list
   (oldest first) with its ``updated_at``; several server annotations of one annotator on
   one passage: the latest is current, the others go to history;
3. cancelled (skipped) annotations and the off-topic flag are stored as exported;
4. ``completed_by`` becomes ``{"id", "email"}`` so annotators are named across servers,
   and tasks without any annotation are not stored; predictions are not stored.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from html import escape
from typing import Mapping, Sequence

from pipeline.errors import InputError
from pipeline.labels import TEXT_NAME

TASK_FIELDS = ("text", "passage_id", "doc_id", "paragraph_index", "date", "sources")


# -- push ----------------------------------------------------------------------------------

def passage_locations(passage: Mapping) -> set[tuple[str, int]]:
    """Every (doc_id, paragraph_index) a passage was found at (near-duplicates have several)."""
    locations = {(passage.get("doc_id"), passage.get("paragraph_index"))}
    for source in passage.get("sources") or ():
        if isinstance(source, Mapping):
            locations.add((source.get("doc_id"), source.get("paragraph_index")))
    return {loc for loc in locations if loc[0] is not None}


def task_data(passage: Mapping, priority: int | None = None) -> dict:
    """Label Studio task data of one ingested passage (the fields of the seed export, plus ordering)."""
    sources = passage.get("sources") or []
    doc_ids = sorted({s["doc_id"] for s in sources if isinstance(s, Mapping) and s.get("doc_id")}) or [passage["doc_id"]]
    data = {
        TEXT_NAME: passage["text"], "passage_id": passage["id"], "doc_id": passage["doc_id"],
        "paragraph_index": passage["paragraph_index"], "date": passage.get("date") or "",
        "sources": ", ".join(doc_ids), "cluster_id": passage.get("cluster_id") or passage["id"],
    }
    if priority is not None:
        data["priority"] = priority  # active-learning queue position: sort the Data Manager by it
    return data


def guidelines_html(markdown_text: str) -> str:
    """The annotator guidelines as HTML for the project's instructions."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - markdown-it-py comes with the main lock
        return f"<pre>{escape(markdown_text)}</pre>"
    return MarkdownIt("commonmark").render(markdown_text)


# -- pull ----------------------------------------------------------------------------------

def annotator_of(annotation: Mapping) -> str:
    """Stable annotator key: the email when known, else the user id (as the annotation reader does)."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        return str(who.get("email") or who.get("id"))
    return str(who)


def _content(annotation: Mapping) -> str:
    """What an annotator decided, ignoring result ids, timestamps and bookkeeping."""
    results = sorted((r.get("from_name"), sorted((r.get("value") or {}).get("choices") or []))
                     for r in annotation.get("result") or [] if isinstance(r, Mapping))
    return json.dumps([results, bool(annotation.get("was_cancelled"))])


def _snapshot(annotation: Mapping) -> dict:
    return {k: copy.deepcopy(v) for k, v in annotation.items() if k != "history"}


def normalise_task(task: Mapping, users: Mapping[int, str]) -> dict:
    """A server export task as stored locally: annotators named, predictions and drafts dropped."""
    out = copy.deepcopy(dict(task))
    out["predictions"] = []
    out["drafts"] = []
    for ann in out.get("annotations") or []:
        who = ann.get("completed_by")
        if isinstance(who, int):
            ann["completed_by"] = {"id": who, "email": users.get(who)} if users.get(who) else who
    return out


def merge_exports(local: Sequence[Mapping], remote: Sequence[Mapping]) -> tuple[list[dict], dict]:
    """Merge a (normalised) server export into the local copy; returns (tasks, counts)."""
    counts = {"added": 0, "updated": 0, "unchanged": 0, "kept_local_only": 0, "tasks": 0}
    by_pid: dict[str, dict] = {}
    order: list[str] = []

    def pid_of(task: Mapping) -> str:
        data = task.get("data") or {}
        pid = data.get("passage_id")
        if not isinstance(pid, str) or not pid:
            raise InputError(f"task {task.get('id')}: missing field 'data.passage_id'")
        return pid

    for task in local:
        pid = pid_of(task)
        if pid in by_pid:  # one local task per passage: fold duplicates
            by_pid[pid]["annotations"].extend(copy.deepcopy(task.get("annotations") or []))
            continue
        by_pid[pid] = copy.deepcopy(dict(task))
        by_pid[pid]["annotations"] = list(by_pid[pid].get("annotations") or [])
        order.append(pid)

    remote_by_pid: dict[str, list[Mapping]] = defaultdict(list)
    for task in sorted(remote, key=lambda t: t.get("id") or 0):
        remote_by_pid[pid_of(task)].append(task)

    seen_local: set[tuple[str, str]] = set()
    for pid, tasks in remote_by_pid.items():
        server_anns = [a for t in tasks for a in t.get("annotations") or []]
        if not server_anns and pid not in by_pid:
            continue
        base = by_pid.get(pid)
        merged_task = copy.deepcopy(dict(tasks[0]))
        current = {annotator_of(a): a for a in (base or {}).get("annotations", [])}
        groups: dict[str, list[Mapping]] = defaultdict(list)
        for ann in server_anns:
            groups[annotator_of(ann)].append(ann)
        for who, anns in groups.items():
            anns = sorted(anns, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
            latest = copy.deepcopy(dict(anns[-1]))
            old = current.get(who)
            history = list((old or {}).get("history") or [])
            known = {(h.get("id"), h.get("updated_at")) for h in history}
            for earlier in anns[:-1]:
                if (earlier.get("id"), earlier.get("updated_at")) not in known:
                    history.append(_snapshot(earlier))
            if old is None:
                counts["added"] += 1
            elif _content(old) != _content(latest):
                if (old.get("id"), old.get("updated_at")) not in known:
                    history.append(_snapshot(old))
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
            latest.pop("history", None)
            if history:
                latest["history"] = sorted(history, key=lambda h: str(h.get("updated_at") or ""))
            current[who] = latest
            seen_local.add((pid, who))
        for who in current:
            if (pid, who) not in seen_local:
                counts["kept_local_only"] += 1
        merged_task["annotations"] = sorted(current.values(), key=lambda a: (a.get("id") or 0))
        if pid not in by_pid:
            order.append(pid)
        by_pid[pid] = merged_task

    for pid, task in by_pid.items():
        if pid not in remote_by_pid:
            counts["kept_local_only"] += len(task.get("annotations") or [])
    tasks = [by_pid[pid] for pid in order if by_pid[pid].get("annotations")]
    tasks.sort(key=lambda t: t.get("id") or 0)
    counts["tasks"] = len(tasks)
    return tasks, counts
