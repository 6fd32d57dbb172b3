"""Label Studio JSON export fragments for tests: one annotation, one task (the seed file's shape)."""

from pipeline.annotations import choices_results


def ann(ann_id, who, frames=(), stance="neutral", updated="2026-01-01T00:00:00Z", cancelled=False, off_topic=False,
        schema=None):
    result = [] if cancelled else choices_results(schema, frames, None if off_topic else stance, off_topic)
    return {"id": ann_id, "completed_by": who, "result": result, "was_cancelled": cancelled,
            "created_at": updated, "updated_at": updated}


def task(task_id, pid, *anns):
    return {"id": task_id, "data": {"text": f"text {pid}", "passage_id": pid, "doc_id": "d", "paragraph_index": task_id},
            "annotations": list(anns), "predictions": [], "drafts": []}
