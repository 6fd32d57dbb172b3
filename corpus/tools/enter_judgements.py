"""Enter annotators' judgements into Label Studio under each annotator's own account.

How the corpus was labelled (corpus/DATASHEET.md): each annotator judged their passages from
labels/GUIDELINES.md alone and wrote one JSON line per passage,
``{"id": <passage id>, "frames": [...], "stance": ..., "off_topic": bool}``. This script signs
each annotator up (`framing labelstudio add-annotator`), then creates their annotations through
the SDK with *their* API token, on the tasks `framing labelstudio push` imported, so Label Studio
records them as that user's work; `framing labelstudio pull` then exports them. Idempotent: a
task the annotator already annotated is skipped.

    python corpus/tools/enter_judgements.py --state-dir DIR --email EMAIL JUDGEMENTS.jsonl [--adjudication]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.annotations import choices_results
from pipeline.config import load_params
from pipeline.labelstudio import client, server, users
from pipeline.schema import load_label_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("judgements", type=Path)
    parser.add_argument("--email", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--adjudication", action="store_true", help="into the adjudication project")
    parser.add_argument("--labels", default="configs/labels.yaml")
    args = parser.parse_args()
    schema = load_label_schema(args.labels)
    params = load_params()
    settings = server.load_settings(args.state_dir, dotenv=None)
    url = (server.read_pid_file(settings) or {}).get("url") or settings.url
    admin = client.connect(url, settings.api_key)
    annotator, _ = users.add_annotator(admin, url, args.state_dir, args.email)
    role = client.ADJUDICATION if args.adjudication else client.ANNOTATION
    title = params.labelstudio.adjudication_title if args.adjudication else params.labelstudio.title
    pid = client.find_project(admin, url, args.state_dir / "project.json", title, role=role)
    tasks = {t["data"]["passage_id"]: t for t in client.task_dicts(admin, url, pid)}
    mine = client.connect(url, annotator.token)
    created = skipped = missing = 0
    for line in args.judgements.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        task = tasks.get(j["id"])
        if task is None:
            missing += 1
            continue
        if any((a.get("completed_by") == annotator.user_id) for a in task.get("annotations") or []):
            skipped += 1
            continue
        result = choices_results(schema, j["frames"], None if j["off_topic"] else j["stance"], j["off_topic"])
        with client.api_errors(url, f"annotating task {task['id']} as {annotator.email}"):
            mine.annotations.create(id=task["id"], result=result)
        created += 1
    print(f"{annotator.email}: {created} annotation(s) created, {skipped} already there, "
          f"{missing} judgement(s) for passages not in project {pid}")


if __name__ == "__main__":
    main()
