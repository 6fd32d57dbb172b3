"""The annotation loop against a real Label Studio server: start, push, annotate, pull, faults.

The tests run in file order and share one server and one workspace (40 seed passages,
an initially empty annotations folder), as an annotation round would.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter

import pytest

from pipeline.annotations import choices_results, read_exports
from pipeline.labelstudio import client, server
from pipeline.labelstudio import cli as ls_cli

pytestmark = pytest.mark.integration


class FakeModel:
    """Stands in for pipeline.model.FramingModel: deterministic outputs that differ per text."""

    frame_names = ["isolated_pariah", "transactional", "strategic_partnership"]
    stance_names = ["critical", "neutral", "supportive"]
    thresholds = [0.5, 0.5, 0.5]
    display_names = {"isolated_pariah": "Isolated pariah", "transactional": "Transactional",
                     "strategic_partnership": "Strategic partnership", "critical": "Critical", "neutral": "Neutral",
                     "supportive": "Supportive"}

    def __init__(self, name="fake"):
        self.name = name

    def predict(self, texts):
        out = []
        for text in texts:
            h = zlib.crc32(text.encode()) % 1000 / 1000
            frames = {"isolated_pariah": h, "transactional": 1 - h, "strategic_partnership": 0.5 * h}
            stance = {"critical": h / 2, "neutral": 1 - h, "supportive": h / 2}
            out.append({"frames": frames, "decided_frames": [f for f, p in frames.items() if p >= 0.5],
                        "stance": max(stance, key=stance.get), "stance_scores": stance, "evidence": {}})
        return out


def fake_model(tmp_path, name="fake", version="1"):
    return client.LoadedModel(model=FakeModel(name), version=f"{name}@{version}", path=tmp_path / "model.pkl")


def cli_args(ls_server, ws, *extra):
    return ["--state-dir", str(ls_server.state_dir), "--url", ls_server.url, "--passages", str(ws["passages"]),
            "--annotations", str(ws["annotations"]), *extra]


def run_cli(monkeypatch, ls_server, command, ws, *extra, api_key=None):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", api_key or ls_server.api_key)
    monkeypatch.chdir(ws["dir"])  # so the repo's .env, if any, is not read
    ls_cli.main([command, *cli_args(ls_server, ws, *extra)])


def push_args(root):
    return ["--labels", str(root / "configs/labels.yaml"), "--label-config", str(root / "labels/label_config.xml"),
            "--guidelines", str(root / "labels/GUIDELINES.md")]


def pull_args(root, ws):
    return ["--labels", str(root / "configs/labels.yaml"), "--agreement-json", str(ws["agreement_json"]),
            "--agreement-md", str(ws["agreement_md"])]


def tasks_of(ls, ls_server, project_id):
    return client._task_dicts(ls, ls_server.url, project_id)


def project_id(ls_server):
    return client.stored_project_id(ls_server.state_dir / "project.json", ls_server.url)


def push_api(ls, ls_server, ws, schema, root, **kw):
    return client.push(ls, ls_server.url, state_file=ls_server.state_dir / "project.json",
                       passages=ws["passage_list"], annotated=client.locally_annotated(ws["annotations"], schema),
                       schema=schema, label_config=(root / "labels/label_config.xml").read_text(encoding="utf-8"),
                       instructions="<p>guidelines</p>", **kw)


# -- server ---------------------------------------------------------------------------------

def test_start_is_idempotent_and_status_reports(ls_server, capsys):
    first = server.status(ls_server)
    assert first["running"] and first["healthy"] and first["url"] == ls_server.url
    again = server.start(ls_server)
    assert again["pid"] == first["pid"]
    ls_cli.main(["status", "--state-dir", str(ls_server.state_dir)])
    assert "running at" in capsys.readouterr().out
    creds = ls_server.credentials_file
    assert creds.stat().st_mode & 0o777 == 0o600
    log = ls_server.log_file.read_text(encoding="utf-8", errors="replace")
    assert ls_server.user_token not in log and ls_server.password not in log  # secrets never logged


def test_token_modes(ls_client, ls_server):
    """The legacy token works (organisation created with legacy tokens on); so does a personal access token."""
    assert ls_client.users.whoami().email == "admin@example.org"
    assert ls_client.jwt_settings.get().legacy_api_tokens_enabled
    pat = ls_client.tokens.create().token  # a JWT refresh token: the SDK exchanges it for access tokens
    assert client.connect(ls_server.url, pat).users.whoami().email == "admin@example.org"


# -- push -----------------------------------------------------------------------------------

def test_interrupted_push_resumes_without_duplicates(ls_client, ls_server, ls_workspace, schema, root, monkeypatch):
    import httpx

    real = ls_client.projects.import_tasks
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise httpx.RemoteProtocolError("server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(ls_client.projects, "import_tasks", flaky)
    with pytest.raises(client.Unreachable, match="cannot reach"):
        push_api(ls_client, ls_server, ls_workspace, schema, root, batch_size=15)
    monkeypatch.undo()
    assert len(tasks_of(ls_client, ls_server, project_id(ls_server))) == 30


def test_push_imports_every_passage_once(ls_client, ls_server, ls_workspace, root, monkeypatch, capsys):
    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    out = capsys.readouterr().out
    assert "created 10 task(s); skipped 30 already on the server" in out
    tasks = tasks_of(ls_client, ls_server, project_id(ls_server))
    pids = [t["data"]["passage_id"] for t in tasks]
    assert len(tasks) == 40 and len(set(pids)) == 40 == len(ls_workspace["passage_list"])
    assert set(pids) == {p["id"] for p in ls_workspace["passage_list"]}
    data = tasks[0]["data"]
    assert {"text", "passage_id", "doc_id", "paragraph_index", "date", "sources", "priority"} <= set(data)
    assert sorted(t["data"]["priority"] for t in tasks) == list(range(1, 41))
    project = ls_client.projects.get(id=project_id(ls_server))
    assert project.label_config.strip() == (root / "labels/label_config.xml").read_text(encoding="utf-8").strip()
    assert "<h1>Annotation guidelines</h1>" in project.expert_instruction

    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    assert "created 0 task(s); skipped 40 already on the server" in capsys.readouterr().out
    assert len(tasks_of(ls_client, ls_server, project_id(ls_server))) == 40


def test_predictions_are_attached_and_refreshed_when_the_model_changes(ls_client, ls_server, ls_workspace, schema,
                                                                        root, tmp_path):
    summary = push_api(ls_client, ls_server, ls_workspace, schema, root, model=fake_model(tmp_path))
    assert (summary.created, summary.predictions_created, summary.predictions_removed) == (0, 40, 0)
    tasks = tasks_of(ls_client, ls_server, summary.project_id)
    preds = [p for t in tasks for p in t["predictions"]]
    assert len(preds) == 40 and {p["model_version"] for p in preds} == {"fake@1"}
    assert all(0 <= p["score"] <= 1 for p in preds)
    assert {r["from_name"] for p in preds for r in p["result"]} == {"frames", "stance"}
    first = min(tasks, key=lambda t: t["data"]["priority"])  # least confident first
    assert first["predictions"][0]["score"] == min(p["score"] for p in preds)
    project = ls_client.projects.get(id=summary.project_id)
    assert project.model_version == "fake@1" and project.sampling == "Uncertainty sampling"

    same = push_api(ls_client, ls_server, ls_workspace, schema, root, model=fake_model(tmp_path))
    assert (same.created, same.predictions_created, same.reprioritised) == (0, 0, 0)

    newer = push_api(ls_client, ls_server, ls_workspace, schema, root, model=fake_model(tmp_path, version="2"))
    assert (newer.predictions_created, newer.predictions_removed) == (40, 40)
    preds = [p for t in tasks_of(ls_client, ls_server, summary.project_id) for p in t["predictions"]]
    assert len(preds) == 40 and {p["model_version"] for p in preds} == {"fake@2"}


# -- annotate and pull ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def annotated(ls_client, ls_server, ls_workspace, schema):
    """Eight passages annotated by the admin, four of them by a second annotator too (who
    disagrees on the stance of two), a skipped task and an off-topic one; created through
    the SDK as annotators would."""
    tasks = sorted(tasks_of(ls_client, ls_server, project_id(ls_server)), key=lambda t: t["data"]["priority"])
    second = ls_client.users.create(email="second@example.org", username="second", first_name="Second")
    for t in tasks[:8]:
        ls_client.annotations.create(t["id"], result=choices_results(schema, ["transactional"], "neutral"), lead_time=4.0)
    for i, t in enumerate(tasks[:4]):
        ls_client.annotations.create(t["id"], result=choices_results(schema, ["transactional"], "critical" if i < 2
                                                                     else "neutral"),
                                     completed_by=second.id, lead_time=5.0)
    ls_client.annotations.create(tasks[8]["id"], result=[], was_cancelled=True)
    ls_client.annotations.create(tasks[9]["id"], result=choices_results(schema, [], None, off_topic=True))
    return {"tasks": tasks, "second": second}


def test_pull_writes_the_merged_export_and_agreement(annotated, ls_server, ls_workspace, schema, root, monkeypatch,
                                                     capsys):
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "annotations 14 new" in capsys.readouterr().out
    path = ls_workspace["annotations"] / f"labelstudio_project_{project_id(ls_server)}.json"
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert len(exported) == 10 and sum(len(t["annotations"]) for t in exported) == 14
    records = read_exports(ls_workspace["annotations"], schema)
    assert Counter(r.annotator for r in records) == {"admin@example.org": 10, "second@example.org": 4}
    assert sum(r.cancelled for r in records) == 1 and sum(r.off_topic for r in records) == 1

    report = json.loads(ls_workspace["agreement_json"].read_text(encoding="utf-8"))
    assert report["passages_with_2plus_annotators"] == 4 and report["annotators"] == 2
    assert report["labels"]["stance"]["observed"] == 0.5
    assert report["labels"]["frame_transactional"]["observed"] == 1.0
    assert [d["label"] for d in report["disagreements"]] == ["stance", "stance"]
    assert report["pairs"][0]["annotators"] == ["admin@example.org", "second@example.org"]
    assert "# Inter-annotator agreement" in ls_workspace["agreement_md"].read_text(encoding="utf-8")

    before = path.read_bytes()
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "0 new, 0 changed" in capsys.readouterr().out and path.read_bytes() == before


def test_push_after_pull_skips_the_annotated(ls_client, ls_server, ls_workspace, root, monkeypatch, capsys):
    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    assert "created 0 task(s); skipped 31 already on the server and 9 annotated locally" in capsys.readouterr().out
    assert len(tasks_of(ls_client, ls_server, project_id(ls_server))) == 40


def test_changed_annotation_keeps_history_and_nothing_local_is_deleted(annotated, ls_client, ls_server, ls_workspace,
                                                                       schema, root, monkeypatch, capsys):
    first = ls_client.tasks.get(id=str(annotated["tasks"][0]["id"]))
    mine = next(a for a in first.annotations if a["completed_by"] != annotated["second"].id)
    ls_client.annotations.update(id=mine["id"], result=choices_results(schema, ["strategic_partnership"], "supportive"))
    gone = ls_client.tasks.get(id=str(annotated["tasks"][7]["id"])).annotations[0]
    ls_client.annotations.delete(id=gone["id"])
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "1 changed" in capsys.readouterr().out
    path = ls_workspace["annotations"] / f"labelstudio_project_{project_id(ls_server)}.json"
    tasks = {t["id"]: t for t in json.loads(path.read_text(encoding="utf-8"))}
    changed = next(a for a in tasks[first.id]["annotations"] if a["id"] == mine["id"])
    assert changed["result"][1]["value"]["choices"] == ["Supportive"]
    assert [h["result"][1]["value"]["choices"] for h in changed["history"]] == [["Neutral"]]
    assert any(a["id"] == gone["id"] for a in tasks[annotated["tasks"][7]["id"]]["annotations"])  # kept locally


def test_dataset_picks_up_the_pulled_labels(ls_workspace, params, root, tmp_path):
    from pipeline import dataset

    summary = dataset.run(ls_workspace["passages"], ls_workspace["annotations"], root / "configs/labels.yaml",
                          tmp_path / "ds", tmp_path / "pq", tmp_path / "stats.json", tmp_path / "report.json",
                          params.dataset, params.seed)
    # 10 passages annotated: 1 only skipped, 1 off-topic and 2 stance ties are left out
    assert summary["passages_annotated"] == 10
    assert summary["excluded"] == {"stale": 0, "off_topic": 1, "ties": 2, "cancelled": 1}
    assert summary["examples"] == 6
    assert summary["agreement"]["passages_with_2plus_annotators"] == 4


# -- faults ---------------------------------------------------------------------------------

def test_label_outside_the_schema_stops_the_pull(annotated, ls_client, ls_server, ls_workspace, schema, root,
                                                 monkeypatch):
    pid = project_id(ls_server)
    config = (root / "labels/label_config.xml").read_text(encoding="utf-8")
    ls_client.projects.update(id=pid, label_config=config.replace(
        '<Choice value="Critical"', '<Choice value="Hostile"/>\n    <Choice value="Critical"'))
    task = annotated["tasks"][10]
    bad = ls_client.annotations.create(task["id"], result=[
        {"from_name": "stance", "to_name": "text", "type": "choices", "value": {"choices": ["Hostile"]}}])
    path = ls_workspace["annotations"] / f"labelstudio_project_{pid}.json"
    before = path.read_bytes()
    with pytest.raises(client.LabelStudioError, match=f"task {task['id']}.*unknown stance label 'Hostile'.*nothing was written"):
        run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert path.read_bytes() == before
    ls_client.annotations.delete(id=bad.id)
    ls_client.projects.update(id=pid, label_config=config)


def test_interrupted_export_writes_nothing(ls_client, ls_server, ls_workspace, schema, monkeypatch):
    import httpx

    def broken(*args, **kwargs):
        raise httpx.ReadError("connection reset mid-export")

    monkeypatch.setattr(ls_client.projects.exports, "as_json", broken)
    outputs = [ls_workspace["annotations"] / f"labelstudio_project_{project_id(ls_server)}.json",
               ls_workspace["agreement_json"], ls_workspace["agreement_md"]]
    before = [p.read_bytes() for p in outputs]
    with pytest.raises(client.Unreachable, match="exporting project"):
        client.pull(ls_client, ls_server.url, state_file=ls_server.state_dir / "project.json",
                    annotations_dir=ls_workspace["annotations"], schema=schema,
                    agreement_json=ls_workspace["agreement_json"], agreement_md=ls_workspace["agreement_md"])
    assert [p.read_bytes() for p in outputs] == before
    assert not [p for p in ls_workspace["annotations"].iterdir() if p.name.endswith(".tmp")]


def test_wrong_token_and_unreachable_server(ls_server, ls_workspace, root, monkeypatch):
    with pytest.raises(client.AuthError, match="rejected the API token"):
        run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace), api_key="0" * 40)
    dead = f"http://127.0.0.1:{server.free_port()}"
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server.api_key)
    with pytest.raises(client.Unreachable, match="cannot reach Label Studio"):
        ls_cli.main(["push", "--state-dir", str(ls_server.state_dir), "--url", dead, "--no-model",
                     "--passages", str(ls_workspace["passages"]), "--annotations", str(ls_workspace["annotations"]),
                     *push_args(root)])


def test_project_deleted_on_the_server(ls_client, ls_server, ls_workspace, schema, root, tmp_path):
    state = tmp_path / "project.json"
    kw = dict(state_file=state, passages=ls_workspace["passage_list"][:3], annotated=set(), schema=schema,
              label_config=(root / "labels/label_config.xml").read_text(encoding="utf-8"), instructions="",
              title="doomed")
    first = client.push(ls_client, ls_server.url, **kw)
    ls_client.projects.delete(id=first.project_id)
    with pytest.raises(client.ProjectGone, match=f"project {first.project_id} no longer exists.*--new-project"):
        client.pull(ls_client, ls_server.url, state_file=state, annotations_dir=tmp_path, schema=schema,
                    agreement_json=tmp_path / "a.json", agreement_md=tmp_path / "a.md")
    with pytest.raises(client.ProjectGone):
        client.push(ls_client, ls_server.url, **kw)
    again = client.push(ls_client, ls_server.url, **kw, new_project=True)
    assert again.project_created and again.created == 3 and again.project_id != first.project_id
    assert not (tmp_path / "a.json").exists()


def test_push_with_a_model_when_everything_is_annotated(ls_client, ls_server, ls_workspace, schema, root, tmp_path):
    passages = ls_workspace["passage_list"][:2]
    summary = client.push(ls_client, ls_server.url, state_file=tmp_path / "project.json", passages=passages,
                          annotated={p["id"] for p in passages}, schema=schema, model=fake_model(tmp_path),
                          label_config=(root / "labels/label_config.xml").read_text(encoding="utf-8"),
                          instructions="", title="all annotated")
    assert (summary.created, summary.skipped_annotated, summary.predictions_created) == (0, 2, 0)


def test_changed_passage_is_reported_not_duplicated(ls_client, ls_server, ls_workspace, schema, root):
    passages = [dict(p) for p in ls_workspace["passage_list"]]
    annotated = client.locally_annotated(ls_workspace["annotations"], schema)
    victim = next(p for p in passages if p["id"] not in annotated)
    victim.update(id="edited" + victim["id"][6:], text=victim["text"] + " (corrected)")
    summary = client.push(ls_client, ls_server.url, state_file=ls_server.state_dir / "project.json", passages=passages,
                          annotated=annotated, schema=schema,
                          label_config=(root / "labels/label_config.xml").read_text(encoding="utf-8"),
                          instructions="")
    assert summary.created == 0 and [c["passage_id"] for c in summary.changed] == [victim["id"]]
    assert "changed passages: 1" in "\n".join(summary.lines())
    assert len(tasks_of(ls_client, ls_server, summary.project_id)) == 40


def test_stop(ls_server, capsys):
    ls_cli.main(["stop", "--state-dir", str(ls_server.state_dir)])
    assert "stopped" in capsys.readouterr().out
    assert not server.status(ls_server)["running"] and not server.healthy(ls_server.url)
    with pytest.raises(SystemExit) as exc:
        ls_cli.main(["status", "--state-dir", str(ls_server.state_dir)])
    assert exc.value.code == 3
