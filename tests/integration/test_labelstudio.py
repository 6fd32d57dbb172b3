"""The annotation loop against a real Label Studio server (started by the project's own code) and,
for live predictions, the real prediction service: push, annotate as real users, pull, adjudicate.

Tests run in file order and share one server; each builds on what the earlier ones left."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from pipeline.annotations import choices_results, read_exports
from pipeline.config import LabelStudioParams
from pipeline.labels import adjudication_config_xml
from pipeline.labelstudio import client, mlbackend, push, server, users
from pipeline.labelstudio import cli as ls_cli

pytestmark = pytest.mark.integration

TITLE = LabelStudioParams().title


def settings_doc(root, **overrides):
    params = LabelStudioParams(**overrides)
    return client.project_settings(params, label_config=(root / "labels/label_config.xml").read_text(encoding="utf-8"),
                                   instructions="<p>guidelines</p>")


def cli_args(ls_server, ws, *extra):
    return ["--state-dir", str(ls_server.state_dir), "--url", ls_server.url, "--passages", str(ws["passages"]),
            "--annotations", str(ws["annotations"]), *extra]


def run_cli(monkeypatch, ls_server, command, ws, *extra, api_key=None):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", api_key or ls_server.api_key)
    monkeypatch.chdir(ws["dir"])  # so the repo's .env, if any, is not read
    ls_cli.main([command, *cli_args(ls_server, ws, *extra)])


def push_args(root):
    return ["--params", str(root / "configs/params.yaml"), "--labels", str(root / "configs/labels.yaml"),
            "--label-config", str(root / "labels/label_config.xml"), "--guidelines", str(root / "labels/GUIDELINES.md")]


def pull_args(root, ws):
    return ["--params", str(root / "configs/params.yaml"), "--labels", str(root / "configs/labels.yaml"),
            "--agreement-json", str(ws["agreement_json"]), "--agreement-md", str(ws["agreement_md"])]


def state(ls_server):
    return ls_server.state_dir / "project.json"


def project_id(ls_server, role=client.ANNOTATION):
    return client.stored_project_id(state(ls_server), ls_server.url, role)


def tasks_of(ls, ls_server, pid=None):
    return client.task_dicts(ls, ls_server.url, pid or project_id(ls_server))


def push_api(ls, ls_server, ws, schema, root, **kw):
    kw.setdefault("settings", settings_doc(root))
    return push.push(ls, ls_server.url, state_file=state(ls_server), passages=kw.pop("passages", ws["passage_list"]),
                     annotated=push.locally_annotated(ws["annotations"], schema), schema=schema, **kw)


@pytest.fixture(scope="module")
def champion(trained):
    """The registry champion of a real train-stage run: what push pre-annotates with by default."""
    return push.champion_model(trained["tracking"], "framing-classifier", "champion")


# -- server ---------------------------------------------------------------------------------

def test_start_is_idempotent_and_status_reports(ls_server, capsys):
    first = server.status(ls_server)
    assert first["running"] and first["healthy"] and first["url"] == ls_server.url
    again = server.start(ls_server)
    assert again["pid"] == first["pid"]
    ls_cli.main(["status", "--state-dir", str(ls_server.state_dir)])
    assert "running at" in capsys.readouterr().out
    assert ls_server.credentials_file.stat().st_mode & 0o777 == 0o600
    log = ls_server.log_file.read_text(encoding="utf-8", errors="replace")
    assert ls_server.user_token not in log and ls_server.password not in log  # secrets never logged


def test_start_says_where_generated_credentials_are(ls_server, capsys):
    ls_cli.main(["start", "--state-dir", str(ls_server.state_dir), "--port", str(ls_server.port)])
    out = capsys.readouterr().out
    assert f"password in {ls_server.credentials_file}" in out and "from the environment" not in out


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
    assert len(tasks_of(ls_client, ls_server)) == 30


def test_push_imports_every_passage_once_with_overlap_settings(ls_client, ls_server, ls_workspace, root,
                                                                monkeypatch, capsys):
    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    out = capsys.readouterr().out
    assert "created 10 task(s); skipped 30 already on the server" in out
    tasks = tasks_of(ls_client, ls_server)
    pids = [t["data"]["passage_id"] for t in tasks]
    assert len(tasks) == 40 and len(set(pids)) == 40 == len(ls_workspace["passage_list"])
    assert sorted(t["data"]["priority"] for t in tasks) == list(range(1, 41))
    project = ls_client.projects.get(id=project_id(ls_server))
    assert project.label_config.strip() == (root / "labels/label_config.xml").read_text(encoding="utf-8").strip()
    assert "<h1>Annotation guidelines</h1>" in project.expert_instruction
    # overlap from params.yaml: every task wants two annotators (regression: it was one)
    assert (project.maximum_annotations, project.overlap_cohort_percentage) == (2, 100)
    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    assert "created 0 task(s); skipped 40 already on the server" in capsys.readouterr().out


def test_without_a_stored_id_the_project_is_found_by_title_not_duplicated(ls_client, ls_server, ls_workspace,
                                                                          schema, root):
    state(ls_server).unlink()
    summary = push_api(ls_client, ls_server, ls_workspace, schema, root, title=TITLE)
    assert not summary.project_created and summary.created == 0
    assert client.projects_titled(ls_client, ls_server.url, TITLE) == [summary.project_id]


def test_new_project_is_refused_while_the_project_exists(ls_client, ls_server, ls_workspace, schema, root):
    with pytest.raises(client.LabelStudioError, match="still exists"):
        push_api(ls_client, ls_server, ls_workspace, schema, root, title=TITLE, new_project=True)
    assert client.projects_titled(ls_client, ls_server.url, TITLE) == [project_id(ls_server)]


def test_two_projects_of_one_title_need_an_explicit_project(ls_client, ls_server, ls_workspace, schema, root,
                                                            tmp_path):
    twin = ls_client.projects.create(title="twins").id
    other = ls_client.projects.create(title="twins").id
    with pytest.raises(client.LabelStudioError, match=r"2 projects titled 'twins'.*--project ID"):
        push.push(ls_client, ls_server.url, state_file=tmp_path / "p.json", passages=[], annotated=set(),
                  schema=schema, settings=settings_doc(root), title="twins")
    chosen = push.push(ls_client, ls_server.url, state_file=tmp_path / "p.json", passages=[], annotated=set(),
                       schema=schema, settings=settings_doc(root), title="twins", project_id=other)
    assert chosen.project_id == other
    for pid in (twin, other):
        ls_client.projects.delete(id=pid)


def test_pre_annotations_come_from_the_registry_champion(ls_client, ls_server, ls_workspace, schema, root,
                                                         champion):
    """Regression: push took models/model.pkl, which after a "champion kept" run is the rejected candidate."""
    assert champion.version == "framing-classifier@v1" and "champion" in champion.source
    summary = push_api(ls_client, ls_server, ls_workspace, schema, root, model=champion)
    assert (summary.created, summary.predictions_created, summary.predictions_removed) == (0, 40, 0)
    tasks = tasks_of(ls_client, ls_server)
    preds = [p for t in tasks for p in t["predictions"]]
    assert len(preds) == 40 and {p["model_version"] for p in preds} == {"framing-classifier@v1"}
    outputs = {t["data"]["passage_id"]: o for t, o in zip(tasks, champion.model.predict([t["data"]["text"] for t in tasks]))}
    first = min(tasks, key=lambda t: t["data"]["priority"])  # least confident first
    assert first["predictions"][0]["score"] == min(p["score"] for p in preds)
    assert {r["from_name"] for p in preds for r in p["result"]} <= {"frames", "stance"}
    assert all(outputs[t["data"]["passage_id"]]["stance"].capitalize() in json.dumps(t["predictions"][0]["result"])
               for t in tasks)
    project = ls_client.projects.get(id=summary.project_id)
    assert project.model_version == "framing-classifier@v1" and project.sampling == "Uncertainty sampling"


def test_predictions_carry_their_near_duplicate_cluster(ls_client, ls_server):
    """Regression: the cluster of every prediction was stored as null, so the queue could not spread clusters."""
    clusters = [p["cluster"] for t in tasks_of(ls_client, ls_server) for p in t["predictions"]]
    assert clusters and all(isinstance(c, int) for c in clusters)


def test_a_second_push_of_the_same_champion_changes_nothing(ls_client, ls_server, ls_workspace, schema, root,
                                                            champion):
    same = push_api(ls_client, ls_server, ls_workspace, schema, root, model=champion)
    assert (same.created, same.predictions_created, same.predictions_removed, same.reprioritised) == (0, 0, 0, 0)


# -- annotators -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def annotators(ls_client, ls_server):
    """Two annotators signed up through `framing labelstudio add-annotator` (regression: a user made
    with POST /api/users/ belonged to no organisation and could not log in)."""
    made = {}
    for email in ("ann.one@example.org", "ann.two@example.org"):
        made[email], created = users.add_annotator(ls_client, ls_server.url, ls_server.state_dir, email)
        assert created
    return made


def test_an_added_annotator_belongs_to_the_organisation_and_can_work(annotators, ls_client, ls_server):
    one = annotators["ann.one@example.org"]
    assert (ls_server.state_dir / users.ANNOTATORS_FILE).stat().st_mode & 0o777 == 0o600
    theirs = client.connect(ls_server.url, one.token)
    assert theirs.users.whoami().email == "ann.one@example.org"
    assert project_id(ls_server) in [p.id for p in theirs.projects.list()]
    session = requests.Session()  # and log in with the stored password, as a person would
    page = session.get(f"{ls_server.url}/user/login/", timeout=30)
    csrf = session.cookies.get("csrftoken")
    done = session.post(f"{ls_server.url}/user/login/", data={"email": one.email, "password": one.password,
                        "csrfmiddlewaretoken": csrf}, headers={"Referer": page.url}, allow_redirects=False, timeout=30)
    assert done.status_code == 302
    again, created = users.add_annotator(ls_client, ls_server.url, ls_server.state_dir, "ANN.one@example.org")
    assert not created and again.user_id == one.user_id


def test_the_queue_each_annotator_gets_is_least_confident_first(annotators, ls_client, ls_server):
    """/next, as the labeling UI asks it, for two annotators: a task among the least confident, not random."""
    tasks = tasks_of(ls_client, ls_server)
    scores = sorted(t["predictions"][0]["score"] for t in tasks)
    for annotator in annotators.values():
        resp = requests.get(f"{ls_server.url}/api/projects/{project_id(ls_server)}/next",
                            headers={"Authorization": f"Token {annotator.token}"}, timeout=30)
        assert resp.status_code == 200, resp.text
        got = resp.json()
        # Label Studio picks at random among the (annotators + 1) lowest-scored, to keep annotators apart
        assert got["predictions"][0]["score"] <= scores[len(annotators) + 1]


@pytest.fixture(scope="module")
def annotated(annotators, ls_client, ls_server, ls_workspace, schema):
    """Eight passages labelled by annotator one, four of them by annotator two too (who disagrees on
    the stance of two), a skipped task and an off-topic one, each with the annotator's own token."""
    tasks = sorted(tasks_of(ls_client, ls_server), key=lambda t: t["data"]["priority"])
    one = client.connect(ls_server.url, annotators["ann.one@example.org"].token)
    two = client.connect(ls_server.url, annotators["ann.two@example.org"].token)
    for t in tasks[:8]:
        one.annotations.create(id=t["id"], result=choices_results(schema, ["transactional"], "neutral"), lead_time=4.0)
    for i, t in enumerate(tasks[:4]):
        two.annotations.create(id=t["id"], result=choices_results(schema, ["transactional"],
                                                                  "critical" if i < 2 else "neutral"), lead_time=5.0)
    one.annotations.create(id=tasks[8]["id"], result=[], was_cancelled=True)
    one.annotations.create(id=tasks[9]["id"], result=choices_results(schema, [], None, off_topic=True))
    return {"tasks": tasks}


def test_pull_writes_the_merged_export_and_agreement(annotated, ls_server, ls_workspace, schema, root, monkeypatch,
                                                     capsys):
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "annotations 14 new" in capsys.readouterr().out
    path = ls_workspace["annotations"] / f"labelstudio_project_{project_id(ls_server)}.json"
    assert path.stat().st_mode & 0o777 == 0o644  # regression: pulled outputs were 0600 unlike all others
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert len(exported) == 10 and sum(len(t["annotations"]) for t in exported) == 14
    records = read_exports(ls_workspace["annotations"], schema)
    assert Counter(r.annotator for r in records) == {"ann.one@example.org": 10, "ann.two@example.org": 4}
    report = json.loads(ls_workspace["agreement_json"].read_text(encoding="utf-8"))
    assert report["passages_with_2plus_annotators"] == 4 and report["annotators"] == 2
    assert report["labels"]["stance"]["observed"] == 0.5
    assert [d["label"] for d in report["disagreements"]] == ["stance", "stance"]
    before = path.read_bytes()
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "0 new, 0 changed" in capsys.readouterr().out and path.read_bytes() == before


def test_push_after_pull_skips_the_annotated(ls_client, ls_server, ls_workspace, root, monkeypatch, capsys):
    run_cli(monkeypatch, ls_server, "push", ls_workspace, "--no-model", *push_args(root))
    assert "created 0 task(s); skipped 31 already on the server and 9 annotated locally" in capsys.readouterr().out


def test_changed_annotation_keeps_history_and_nothing_local_is_deleted(annotated, annotators, ls_client, ls_server,
                                                                       ls_workspace, schema, root, monkeypatch, capsys):
    one_id = annotators["ann.one@example.org"].user_id
    first = ls_client.tasks.get(id=str(annotated["tasks"][0]["id"]))
    # GET /api/tasks/<id> gives the annotator as a user object, the list endpoints as an id
    mine = next(a for a in first.annotations if (a["completed_by"] or {}).get("id") == one_id)
    ls_client.annotations.update(id=mine["id"], result=choices_results(schema, ["strategic_partnership"], "supportive"))
    gone = ls_client.tasks.get(id=str(annotated["tasks"][7]["id"])).annotations[0]
    ls_client.annotations.delete(id=gone["id"])
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    assert "1 changed" in capsys.readouterr().out
    path = ls_workspace["annotations"] / f"labelstudio_project_{project_id(ls_server)}.json"
    tasks = {t["id"]: t for t in json.loads(path.read_text(encoding="utf-8"))}
    changed = next(a for a in tasks[first.id]["annotations"] if a["id"] == mine["id"])
    assert [h["result"][1]["value"]["choices"] for h in changed["history"]] == [["Neutral"]]
    assert any(a["id"] == gone["id"] for a in tasks[annotated["tasks"][7]["id"]]["annotations"])  # kept locally


# -- adjudication ---------------------------------------------------------------------------

def test_disagreements_go_to_an_adjudicator_whose_decision_wins(annotated, ls_client, ls_server, ls_workspace,
                                                                schema, root, monkeypatch, params, tmp_path, capsys):
    """Regression: disagreements were dropped from training as ties, with no way to decide them."""
    from pipeline import dataset

    run_cli(monkeypatch, ls_server, "adjudicate", ls_workspace, "--params", str(root / "configs/params.yaml"),
            "--labels", str(root / "configs/labels.yaml"), "--guidelines", str(root / "labels/GUIDELINES.md"))
    assert "2 passage(s) with disagreements not yet adjudicated: 2 new task(s)" in capsys.readouterr().out
    pid = project_id(ls_server, client.ADJUDICATION)
    queue = tasks_of(ls_client, ls_server, pid)
    assert len(queue) == 2 and all(t["data"]["adjudication"] is True for t in queue)
    # what each annotator chose, latest judgement (annotator one changed the first task's label above)
    shown = sorted(t["data"]["judgements"] for t in queue)
    assert all("ann.two@example.org: Transactional; Critical" in j for j in shown)
    assert any("ann.one@example.org: Transactional; Neutral" in j for j in shown)
    assert any("ann.one@example.org: Strategic partnership; Supportive" in j for j in shown)
    assert ls_client.projects.get(id=pid).label_config.strip() == adjudication_config_xml(schema).strip()
    judge, _ = users.add_annotator(ls_client, ls_server.url, ls_server.state_dir, "judge@example.org")
    theirs = client.connect(ls_server.url, judge.token)
    for t in queue:
        theirs.annotations.create(id=t["id"], result=choices_results(schema, ["isolated_pariah"], "critical"))
    run_cli(monkeypatch, ls_server, "pull", ls_workspace, *pull_args(root, ls_workspace))
    report = json.loads(ls_workspace["agreement_json"].read_text(encoding="utf-8"))
    assert report["annotators"] == 2  # the adjudicator is not a third annotator in alpha / kappa
    summary = dataset.run(ls_workspace["passages"], ls_workspace["annotations"], root / "configs/labels.yaml",
                          tmp_path / "ds", tmp_path / "pq", tmp_path / "stats.json", tmp_path / "report.json",
                          params.dataset, params.seed)
    assert summary["excluded"]["ties"] == 0 and summary["excluded"]["adjudicated"] == 2
    decided = {r["passage_id"] for r in json.loads((tmp_path / "report.json").read_text())["adjudicated"]}
    from datasets import load_from_disk

    rows = [r for s in ("train", "validation", "test") for r in load_from_disk(str(tmp_path / "ds"))[s]
            if r["id"] in decided]
    assert len(rows) == 2 and all(r["adjudicated"] and r["n_annotators"] == 2 for r in rows)
    names = load_from_disk(str(tmp_path / "ds"))["train"].features["stance"].names
    assert {names[r["stance"]] for r in rows} == {"critical"}
    capsys.readouterr()
    run_cli(monkeypatch, ls_server, "adjudicate", ls_workspace, "--params", str(root / "configs/params.yaml"),
            "--labels", str(root / "configs/labels.yaml"))
    assert "0 passage(s) with disagreements not yet adjudicated" in capsys.readouterr().out


def test_review_queues_a_passage_the_annotators_agreed_on(annotated, ls_client, ls_server, ls_workspace, root,
                                                           monkeypatch, tmp_path, capsys):
    """After a guideline revision, `adjudicate --review FILE` queues listed passages nobody disputed, with
    both judgements shown; an id that is no passage stops it, naming the line, before anything is queued."""
    from pipeline.errors import InputError

    agreed = annotated["tasks"][2]["data"]["passage_id"]  # both annotators: transactional, neutral
    listing = tmp_path / "review.txt"
    listing.write_text(f"# Hard case 4 revised\n{agreed}\n", encoding="utf-8")
    common = ["--params", str(root / "configs/params.yaml"), "--labels", str(root / "configs/labels.yaml"),
              "--review", str(listing)]
    capsys.readouterr()
    run_cli(monkeypatch, ls_server, "adjudicate", ls_workspace, *common)
    assert "0 passage(s) with disagreements not yet adjudicated and 1 listed for re-review: 1 new task(s)" in \
        capsys.readouterr().out
    pid = project_id(ls_server, client.ADJUDICATION)
    queued = [t for t in tasks_of(ls_client, ls_server, pid) if t["data"]["passage_id"] == agreed]
    assert len(queued) == 1 and queued[0]["data"]["adjudication"] is True
    assert queued[0]["data"]["judgements"].splitlines() == ["ann.one@example.org: Transactional; Neutral",
                                                             "ann.two@example.org: Transactional; Neutral"]
    run_cli(monkeypatch, ls_server, "adjudicate", ls_workspace, *common)  # once only
    assert "0 new task(s), 1 already waiting for the adjudicator" in capsys.readouterr().out
    listing.write_text(f"{agreed}\nno-such-passage\n", encoding="utf-8")
    before = len(tasks_of(ls_client, ls_server, pid))
    with pytest.raises(InputError, match=r"review.txt:2: 'no-such-passage' is not a passage"):
        run_cli(monkeypatch, ls_server, "adjudicate", ls_workspace, *common)
    assert len(tasks_of(ls_client, ls_server, pid)) == before


def test_dataset_counts_only_passages_with_a_completed_annotation(ls_workspace, params, root, tmp_path):
    from pipeline import dataset

    summary = dataset.run(ls_workspace["passages"], ls_workspace["annotations"], root / "configs/labels.yaml",
                          tmp_path / "ds", tmp_path / "pq", tmp_path / "stats.json", tmp_path / "report.json",
                          params.dataset, params.seed)
    # 10 tasks touched: one only skipped (regression: it was counted as annotated), one off-topic
    assert summary["passages_annotated"] == 9
    assert summary["excluded"]["off_topic"] == 1 and summary["excluded"]["cancelled"] == 1


# -- live predictions: the ML backend ----------------------------------------------------------

def test_connect_model_works_on_loopback_and_a_failure_leaves_no_record(ls_client, ls_server, backend, monkeypatch,
                                                                        ls_workspace, capsys, root):
    """Regression: Label Studio refused http://127.0.0.1 (reserved address) and left a half-made record."""
    pid = project_id(ls_server)
    dead = f"http://127.0.0.1:{server.free_port()}/labelstudio"
    with pytest.raises(Exception, match="does not answer"):
        mlbackend.connect_model(ls_client, ls_server.url, pid, dead)
    assert list(ls_client.ml.list(project=pid)) == []
    run_cli(monkeypatch, ls_server, "connect-model", ls_workspace, "--params", str(root / "configs/params.yaml"),
            "--backend-url", backend["url"])
    assert "framing-classifier@v1" in capsys.readouterr().out
    (record,) = ls_client.ml.list(project=pid)
    assert record.url.rstrip("/") == backend["url"] and record.title == "framing-classifier@v1"
    project = ls_client.projects.get(id=pid)
    assert project.model_version == "framing-classifier@v1" and project.evaluate_predictions_automatically


def test_with_the_backend_connected_push_leaves_predictions_to_it(ls_client, ls_server, ls_workspace, schema, root,
                                                                  champion, backend):
    """Regression: every pushed task had a prediction, so Label Studio never asked the backend, and the two
    named the same model differently (…@v1 vs …@<hash>)."""
    extra = [dict(p, id=f"new{i:013d}", text=p["text"] + " Analysts in Seoul were not surprised.",
                  paragraph_index=1000 + i) for i, p in enumerate(ls_workspace["passage_list"][:3])]
    calls_before = backend["log"].read_text(errors="replace").count("/labelstudio/predict")
    summary = push_api(ls_client, ls_server, ls_workspace, schema, root, model=champion,
                       passages=ls_workspace["passage_list"] + extra)
    assert summary.backend == backend["url"] and summary.created == 3 and summary.predictions_created == 0
    assert summary.predictions_retrieved == 3
    assert backend["log"].read_text(errors="replace").count("/labelstudio/predict") > calls_before
    by_pid = {t["data"]["passage_id"]: t for t in tasks_of(ls_client, ls_server)}
    for p in extra:
        (pred,) = by_pid[p["id"]]["predictions"]
        assert pred["model_version"] == "framing-classifier@v1" and isinstance(pred["cluster"], int)


def test_the_backend_predicts_on_import_and_when_a_task_without_prediction_is_opened(ls_client, ls_server, backend,
                                                                                    champion):
    from pipeline.labelstudio.prediction import Labels, prediction

    def calls() -> int:
        return backend["log"].read_text(errors="replace").count("/labelstudio/predict")

    expected = None
    pid = project_id(ls_server)
    text = "Kim and Putin signed a mutual defence treaty and an arms deal in Pyongyang."
    before = calls()
    # connect-model sets evaluate_predictions_automatically: an imported task is predicted at once
    ls_client.projects.import_tasks(id=pid, request=[{"data": {"text": text, "passage_id": "opened-live"}}])
    task = next(t for t in tasks_of(ls_client, ls_server) if t["data"]["passage_id"] == "opened-live")
    assert calls() == before + 1
    (pred,) = task["predictions"]
    expected = prediction(champion.model.predict([text])[0], Labels.of_model(champion.model), "framing-classifier@v1")
    assert pred["model_version"] == "framing-classifier@v1" and pred["result"] == expected["result"]
    # without a prediction (deleted here), opening the task as the labeling UI does asks the backend live
    ls_client.predictions.delete(id=pred["id"])
    opened = requests.get(f"{ls_server.url}/api/tasks/{task['id']}?project={pid}",
                          headers={"Authorization": f"Token {ls_server.api_key}"}, timeout=60).json()
    assert calls() == before + 2
    (pred,) = opened["predictions"]
    assert pred["model_version"] == "framing-classifier@v1" and pred["result"] == expected["result"]


# -- changed text ---------------------------------------------------------------------------

def test_changed_passages_are_reported_and_updated_only_when_asked(ls_client, ls_server, ls_workspace, schema, root,
                                                                   tmp_path):
    """Regression: a changed annotated passage was imported silently as a new task; an unannotated one left
    its stale task in the queue."""
    passages = [dict(p) for p in ls_workspace["passage_list"]]
    annotated = push.locally_annotated(ls_workspace["annotations"], schema)
    by_pid = {t["data"]["passage_id"]: t for t in tasks_of(ls_client, ls_server)}
    fresh = next(p for p in passages if p["id"] not in annotated and not by_pid[p["id"]]["annotations"])
    labelled = next(p for p in passages if p["id"] in annotated)
    fresh_task = by_pid[fresh["id"]]["id"]
    for p in (fresh, labelled):
        p.update(id="edited" + p["id"][6:], text=p["text"] + " (corrected)")
    kw = dict(state_file=state(ls_server), passages=passages, annotated=annotated, schema=schema,
              settings=settings_doc(root))
    before = len(tasks_of(ls_client, ls_server))
    report = push.push(ls_client, ls_server.url, **kw)
    assert report.created == 0 and {c["passage_id"] for c in report.changed} == {fresh["id"], labelled["id"]}
    assert {c["passage_id"]: c["annotated"] for c in report.changed} == {fresh["id"]: False, labelled["id"]: True}
    assert "--update-changed" in "\n".join(report.lines())
    done = push.push(ls_client, ls_server.url, **kw, update_changed=True)
    assert done.created == 1  # the labelled one: a new task; its old task keeps its annotations
    tasks = tasks_of(ls_client, ls_server)
    assert len(tasks) == before + 1
    retexted = next(t for t in tasks if t["data"]["passage_id"] == fresh["id"])
    assert retexted["data"]["text"].endswith("(corrected)") and retexted["id"] == fresh_task  # in place


# -- faults ---------------------------------------------------------------------------------

def test_label_outside_the_schema_stops_the_pull(annotated, ls_client, ls_server, ls_workspace, root, monkeypatch):
    pid = project_id(ls_server)
    config = (root / "labels/label_config.xml").read_text(encoding="utf-8")
    ls_client.projects.update(id=pid, label_config=config.replace(
        '<Choice value="Critical"', '<Choice value="Hostile"/>\n    <Choice value="Critical"'))
    task = annotated["tasks"][10]
    bad = ls_client.annotations.create(id=task["id"], result=[
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
        client.pull(ls_client, ls_server.url, state_file=state(ls_server), annotations_dir=ls_workspace["annotations"],
                    schema=schema, agreement_json=ls_workspace["agreement_json"],
                    agreement_md=ls_workspace["agreement_md"])
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
    kw = dict(state_file=tmp_path / "project.json", passages=ls_workspace["passage_list"][:3], annotated=set(),
              schema=schema, settings=settings_doc(root), title="doomed")
    first = push.push(ls_client, ls_server.url, **kw)
    ls_client.projects.delete(id=first.project_id)
    with pytest.raises(client.ProjectGone, match=f"project {first.project_id} no longer exists.*--new-project"):
        client.pull(ls_client, ls_server.url, state_file=tmp_path / "project.json", annotations_dir=tmp_path,
                    schema=schema, agreement_json=tmp_path / "a.json", agreement_md=tmp_path / "a.md")
    with pytest.raises(client.ProjectGone):
        push.push(ls_client, ls_server.url, **kw)
    again = push.push(ls_client, ls_server.url, **kw, new_project=True)
    assert again.project_created and again.created == 3 and again.project_id != first.project_id
    assert not (tmp_path / "a.json").exists()


def test_stop(ls_server, capsys):
    ls_cli.main(["stop", "--state-dir", str(ls_server.state_dir)])
    assert "stopped" in capsys.readouterr().out
    assert not server.status(ls_server)["running"] and not server.healthy(ls_server.url)
