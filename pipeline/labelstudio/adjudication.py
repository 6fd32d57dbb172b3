"""`framing labelstudio adjudicate`: disagreements go to an adjudicator, whose decision wins.

Every passage whose annotators (their latest judgements) disagree on any label becomes a task
in a separate Label Studio project, showing the passage and what each annotator chose. The
adjudicator labels it like any task; `framing labelstudio pull` exports that project too, and
because its tasks carry ``adjudication: true`` the dataset stage takes the adjudicator's labels
for the passage and every agreement figure leaves them out (an adjudicator is not a third vote).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.agreement import label_values
from pipeline.annotations import AnnotationRecord, latest_adjudications, latest_judgements
from pipeline.labelstudio.client import ADJUDICATION, api_errors, ensure_project, task_dicts
from pipeline.labelstudio.convert import task_data
from pipeline.schema import LabelSchema

log = logging.getLogger(__name__)


def describe(record: AnnotationRecord, schema: LabelSchema) -> str:
    """One annotator's judgement in words, as the adjudicator reads it."""
    display = {l.key: l.display for l in (*schema.frames, *schema.stance)}
    if record.off_topic:
        return f"{record.annotator}: off-topic"
    frames = ", ".join(display[f] for f in schema.frame_names if f in record.frames) or "no frame"
    return f"{record.annotator}: {frames}; {display.get(record.stance, record.stance)}"


def disagreements(records: Sequence[AnnotationRecord], passages: Mapping[str, Mapping],
                  schema: LabelSchema) -> list[tuple[Mapping, list[AnnotationRecord]]]:
    """(passage, its annotators' latest judgements) for every current passage whose annotators
    disagree on some label and that no adjudicator has decided yet, in passage order."""
    by_passage: dict[str, list[AnnotationRecord]] = {}
    for (pid, _), record in sorted(latest_judgements(records).items()):
        by_passage.setdefault(pid, []).append(record)
    decided = latest_adjudications(records)
    out = []
    for pid, passage in passages.items():
        judgements = by_passage.get(pid, [])
        if len(judgements) < 2 or pid in decided:
            continue
        values = [label_values(j, schema) for j in judgements]
        labels = set().union(*values)
        if any(len({v.get(label) for v in values}) > 1 for label in labels):
            out.append((passage, judgements))
    return out


@dataclass
class AdjudicationSummary:
    project_id: int
    project_created: bool
    disagreements: int = 0
    created: int = 0
    already_queued: int = 0
    queued: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"adjudication project {self.project_id}{' (created)' if self.project_created else ''}",
                f"{self.disagreements} passage(s) with disagreements not yet adjudicated: {self.created} new task(s), "
                f"{self.already_queued} already waiting for the adjudicator"]


def push_disagreements(ls, url: str, *, state_file: Path, records: Sequence[AnnotationRecord],
                       passages: Mapping[str, Mapping], schema: LabelSchema, title: str, label_config: str,
                       instructions: str, project_id: int | None = None) -> AdjudicationSummary:
    """Create/update the adjudication project and queue every undecided disagreement once."""
    settings: dict[str, Any] = dict(label_config=label_config, expert_instruction=instructions,
                                    show_instruction=True, show_skip_button=False, maximum_annotations=1,
                                    sampling="Sequential sampling")
    pid, created = ensure_project(ls, url, state_file, title=title, settings=settings, role=ADJUDICATION,
                                  project_id=project_id)
    todo = disagreements(records, passages, schema)
    waiting = {(t.get("data") or {}).get("passage_id") for t in task_dicts(ls, url, pid)}
    summary = AdjudicationSummary(project_id=pid, project_created=created, disagreements=len(todo))
    items = []
    for passage, judgements in todo:
        if passage["id"] in waiting:
            summary.already_queued += 1
            continue
        data = {**task_data(passage), "adjudication": True,
                "judgements": "\n".join(describe(j, schema) for j in judgements)}
        items.append({"data": data})
        summary.queued.append(passage["id"])
    for start in range(0, len(items), 200):
        with api_errors(url, f"importing {len(items[start:start + 200])} adjudication task(s)"):
            ls.projects.import_tasks(id=pid, request=items[start:start + 200])
    summary.created = len(items)
    return summary
