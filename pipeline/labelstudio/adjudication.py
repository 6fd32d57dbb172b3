"""`framing labelstudio adjudicate`: disagreements go to an adjudicator, whose decision wins.

Every passage whose annotators (their latest judgements) disagree on any label becomes a task
in a separate Label Studio project, showing the passage and what each annotator chose. The
adjudicator labels it like any task; `framing labelstudio pull` exports that project too, and
because its tasks carry ``adjudication: true`` the dataset stage takes the adjudicator's labels
for the passage and every agreement figure leaves them out (an adjudicator is not a third vote).

After a guideline revision, ``--review FILE`` also queues the passages it lists (one id per line),
whatever their annotators agreed on: the revised rule may change labels nobody disputed. The
adjudicator sees every judgement so far, an earlier adjudicator's included, and the latest
decision wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.agreement import label_values
from pipeline.annotations import AnnotationRecord, latest_adjudications, latest_judgements
from pipeline.errors import InputError
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


def _judgements_by_passage(records: Sequence[AnnotationRecord]) -> dict[str, list[AnnotationRecord]]:
    """passage id → its annotators' latest judgements, in annotator order."""
    by_passage: dict[str, list[AnnotationRecord]] = {}
    for (pid, _), record in sorted(latest_judgements(records).items()):
        by_passage.setdefault(pid, []).append(record)
    return by_passage


def disagreements(records: Sequence[AnnotationRecord], passages: Mapping[str, Mapping],
                  schema: LabelSchema) -> list[tuple[Mapping, list[AnnotationRecord]]]:
    """(passage, its annotators' latest judgements) for every current passage whose annotators
    disagree on some label and that no adjudicator has decided yet, in passage order."""
    by_passage = _judgements_by_passage(records)
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


def read_review_ids(path: str | Path, passages: Mapping[str, Mapping]) -> list[str]:
    """Passage ids from ``path``, one per line (blank lines and ``#`` comments skipped); an id that is not a
    current passage, or a repeated one, is an InputError naming the line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: review list not found") from None
    ids: dict[str, int] = {}  # id → line, in file order
    for lineno, line in enumerate(lines, 1):
        pid = line.split("#", 1)[0].strip()
        if not pid:
            continue
        if pid not in passages:
            raise InputError(f"{path}:{lineno}: {pid!r} is not a passage of the ingest stage's output")
        if pid in ids:
            raise InputError(f"{path}:{lineno}: {pid!r} is listed twice (first on line {ids[pid]})")
        ids[pid] = lineno
    return list(ids)


def review_items(records: Sequence[AnnotationRecord], passages: Mapping[str, Mapping],
                 review: Sequence[str]) -> list[tuple[Mapping, list[AnnotationRecord]]]:
    """(passage, every judgement so far: annotators' latest, then the latest adjudication) for each id in
    ``review``, in passage order."""
    wanted = set(review)
    by_passage = _judgements_by_passage(records)
    for pid, record in latest_adjudications(records).items():
        by_passage.setdefault(pid, []).append(record)
    return [(passage, by_passage.get(pid, [])) for pid, passage in passages.items() if pid in wanted]


@dataclass
class AdjudicationSummary:
    project_id: int
    project_created: bool
    disagreements: int = 0
    reviews: int = 0
    created: int = 0
    already_queued: int = 0
    queued: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"adjudication project {self.project_id}{' (created)' if self.project_created else ''}",
                f"{self.disagreements} passage(s) with disagreements not yet adjudicated"
                f"{f' and {self.reviews} listed for re-review' if self.reviews else ''}: {self.created} new task(s), "
                f"{self.already_queued} already waiting for the adjudicator"]


def push_disagreements(ls, url: str, *, state_file: Path, records: Sequence[AnnotationRecord],
                       passages: Mapping[str, Mapping], schema: LabelSchema, title: str, label_config: str,
                       instructions: str, project_id: int | None = None,
                       review: Sequence[str] = ()) -> AdjudicationSummary:
    """Create/update the adjudication project and queue every undecided disagreement, and every passage
    in ``review``, once."""
    settings: dict[str, Any] = dict(label_config=label_config, expert_instruction=instructions,
                                    show_instruction=True, show_skip_button=False, maximum_annotations=1,
                                    sampling="Sequential sampling")
    pid, created = ensure_project(ls, url, state_file, title=title, settings=settings, role=ADJUDICATION,
                                  project_id=project_id)
    todo = disagreements(records, passages, schema)
    disputed = {passage["id"] for passage, _ in todo}
    reviewed = [item for item in review_items(records, passages, review) if item[0]["id"] not in disputed]
    waiting = {(t.get("data") or {}).get("passage_id") for t in task_dicts(ls, url, pid)}
    summary = AdjudicationSummary(project_id=pid, project_created=created, disagreements=len(todo),
                                  reviews=len(reviewed))
    todo += reviewed
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
