"""The whole annotation loop, as a team would run it (README, "From 'I have new articles' to 'the
served model changed'"), against a real Label Studio server and a real `framing serve`, in a
throwaway copy of the repository with its own git, DVC cache and MLflow store.

The copy starts with the seed passages annotated and one corpus document not yet annotated. Then:
documents are added → `dvc repro` → push (pre-annotated by the champion) → two annotators label
with overlap and disagree on some → an adjudicator decides → pull → `dvc repro` → the model trained
on the new labels is better on test passages the old champion never trained on, so it is promoted,
packaged and served; Label Studio's live backend then returns its predictions. Finally a worse
candidate (trained on the same labels) is registered but not promoted, and nothing served changes.

The labels the "annotators" give are the corpus's real adjudicated labels (labels/annotations/):
what matters here is that they travel through Label Studio and DVC into the served model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import requests
import yaml

from pipeline.annotations import choices_results, read_exports
from pipeline.dataset import read_passages, resolve
from pipeline.labelstudio import client
from tests import workspace
from tests.servers import free_port, start, stop, wait_http
from tests.workspace import sh

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ADDED_DOCUMENTS = 36     # the new batch: corpus documents at an even stride (all outlet types and rounds)
WAITING_DOCUMENT = 3     # one corpus document ingested but not annotated before the story starts
TITLE = "Loop test: passages"  # its own projects on the shared server
# Fast candidates keep the three `dvc repro` runs short; the other tests cover the full grid.
CANDIDATES = {"linear_mix": {"grid": {"C": [10.0], "char_ngrams": [False]}}}
WORSE_CANDIDATES = {"linear_mix": {"grid": {"C": [0.0001], "char_ngrams": [False]}}}  # almost no fit


def corpus_documents(root: Path) -> list[str]:
    return [line for path in sorted((root / "corpus/documents").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def labelled(root, params, schema, tmp_path_factory):
    """The corpus's final labels by passage text (what the annotators here will choose), and the ids
    of the documents with a passage that has none yet (a disagreement no adjudicator decided)."""
    from pipeline import ingest

    work = tmp_path_factory.mktemp("oracle")
    ingest.run([root / "seeds", root / "corpus/documents"], work / "passages.jsonl", work / "ingest.json",
               params.ingest, params.seed)
    records = read_exports(root / "labels/annotations", schema, params.dataset.adjudicators)
    passages = read_passages(work / "passages.jsonl")
    examples, _ = resolve(records, passages, schema)
    by_text = {e.text: e for e in examples}
    unresolved = {source["doc_id"].split(":", 1)[-1] for record in passages.values()
                  if record["text"] not in by_text for source in record["sources"]}
    return by_text, unresolved


@pytest.fixture(scope="module")
def oracle(labelled):
    return labelled[0]


@pytest.fixture(scope="module")
def repo(root, tmp_path_factory, ls_server, static_embedding, labelled):
    """The copy: seeds annotated, the corpus's annotations and documents left out but one waiting
    document; fast candidates; its own Label Studio projects and credentials (state in .labelstudio);
    the distill stage's table committed to DVC as it is (tests/test_e2e_dvc.py runs that stage)."""
    dest, env = workspace.clone(
        root, tmp_path_factory.mktemp("loop") / "repo",
        keep=lambda rel: not rel.startswith(("corpus/documents/", "labels/annotations/labelstudio_project_")))
    # Only documents whose every passage has a final label: the annotators here need one for each.
    documents = [d for d in corpus_documents(root) if json.loads(d)["id"] not in labelled[1]]
    (dest / "corpus/documents").mkdir(parents=True, exist_ok=True)
    (dest / "corpus/documents/waiting.jsonl").write_text(documents[WAITING_DOCUMENT] + "\n", encoding="utf-8")
    params_file = dest / "configs/params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["train"]["candidates"] = CANDIDATES
    params["labelstudio"].update(title=TITLE, adjudication_title=f"{TITLE} (adjudication)",
                                 annotators_per_task=2, overlap_percent=25)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    shutil.copytree(static_embedding, dest / "models/static_embedding")
    sh([sys.executable, "-m", "dvc", "commit", "--force", "distill"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "seeds only"], dest, env)
    env = {**env, "LABEL_STUDIO_URL": ls_server.url, "LABEL_STUDIO_API_KEY": ls_server.api_key}
    return {"dir": dest, "env": env, "documents": documents}


def framing(repo, *args) -> str:
    return sh([sys.executable, "-m", "pipeline.cli", *args], repo["dir"], repo["env"])


def dvc_repro(repo) -> dict:
    sh([sys.executable, "-m", "dvc", "repro"], repo["dir"], repo["env"])
    return json.loads((repo["dir"] / "models/registry.json").read_text(encoding="utf-8"))


def tasks(repo, role=client.ANNOTATION) -> list[dict]:
    url = repo["env"]["LABEL_STUDIO_URL"]
    ls = client.connect(url, repo["env"]["LABEL_STUDIO_API_KEY"])
    pid = client.stored_project_id(repo["dir"] / ".labelstudio/project.json", url, role)
    return client.task_dicts(ls, url, pid)


def annotator_client(repo, email):
    stored = json.loads((repo["dir"] / ".labelstudio/annotators.json").read_text(encoding="utf-8"))
    return client.connect(repo["env"]["LABEL_STUDIO_URL"], stored[email]["token"])


def judgement(schema, example, *, other_stance: bool = False) -> list[dict]:
    if example.off_topic:
        return choices_results(schema, [], None, off_topic=True)
    stance = example.stance
    if other_stance:  # a plausible disagreement: the neighbouring stance
        stance = "neutral" if stance != "neutral" else "critical"
    return choices_results(schema, example.frames, stance)


@pytest.fixture(scope="module")
def story(repo, oracle, schema):
    """Runs the loop once; the tests below check what each step left behind."""
    out: dict = {}
    out["v1"] = dvc_repro(repo)  # the seeds-only champion
    assert out["v1"]["promoted"] and out["v1"]["version"] == "1", out["v1"]

    # 1. add documents, 9. retrain: no new labels, so nothing is retrained or promoted
    added = repo["documents"][::len(repo["documents"]) // ADDED_DOCUMENTS][:ADDED_DOCUMENTS]  # spread over all files
    (repo["dir"] / "corpus/documents/new_batch.jsonl").write_text("\n".join(added) + "\n", encoding="utf-8")
    out["after_adding"] = dvc_repro(repo)
    out["passages"] = read_passages(repo["dir"] / "data/passages.jsonl")
    out["annotated_before"] = {r.passage_id for r in read_exports(repo["dir"] / "labels/annotations", schema)}
    out["report_before"] = json.loads((repo["dir"] / "data/dataset_report.json").read_text(encoding="utf-8"))

    # 3-4. annotators, push: pre-annotated by the registry champion
    for email in ("loop.one@example.org", "loop.two@example.org", "loop.judge@example.org"):
        framing(repo, "labelstudio", "add-annotator", email)
    out["push"] = framing(repo, "labelstudio", "push")
    out["tasks"] = tasks(repo)

    # 6. annotate: one labels everything, two the overlapping tasks, disagreeing on every third
    one, two = annotator_client(repo, "loop.one@example.org"), annotator_client(repo, "loop.two@example.org")
    overlapping = [t for t in out["tasks"] if t.get("overlap", 1) > 1]
    out["overlapping"] = overlapping
    disagreed = set()
    for t in out["tasks"]:
        one.annotations.create(id=t["id"], result=judgement(schema, oracle[t["data"]["text"]]), lead_time=3.0)
    for i, t in enumerate(overlapping):
        example = oracle[t["data"]["text"]]
        differ = i % 3 == 0 and not example.off_topic
        disagreed |= {t["data"]["passage_id"]} if differ else set()
        two.annotations.create(id=t["id"], result=judgement(schema, example, other_stance=differ), lead_time=4.0)
    out["disagreed"] = disagreed

    # 7-8. pull, adjudicate (the judge decides as the guidelines say: the corpus label), pull
    out["pull"] = framing(repo, "labelstudio", "pull")
    out["adjudicate"] = framing(repo, "labelstudio", "adjudicate")
    judge = annotator_client(repo, "loop.judge@example.org")
    out["adjudication_tasks"] = tasks(repo, client.ADJUDICATION)
    for t in out["adjudication_tasks"]:
        judge.annotations.create(id=t["id"], result=judgement(schema, oracle[t["data"]["text"]]))
    framing(repo, "labelstudio", "pull")

    # 9. retrain on the new labels
    out["v2"] = dvc_repro(repo)
    out["bento_v2"] = json.loads((repo["dir"] / "models/bento.json").read_text(encoding="utf-8"))
    out["report"] = json.loads((repo["dir"] / "data/dataset_report.json").read_text(encoding="utf-8"))
    return out


def test_adding_documents_alone_changes_no_model(story):
    assert story["after_adding"]["version"] == "1"  # train did not run again: the dataset is unchanged
    assert len(story["passages"]) - len(story["annotated_before"]) > 150  # passages waiting for labels


def test_push_queues_every_unannotated_passage_pre_annotated_by_the_champion(story):
    queued = {t["data"]["passage_id"] for t in story["tasks"]}
    assert queued == set(story["passages"]) - story["annotated_before"]
    assert f"created {len(queued)} task(s)" in story["push"]
    versions = {p["model_version"] for t in story["tasks"] for p in t["predictions"]}
    assert versions == {"framing-classifier@v1"}
    # overlap from params: a quarter of the tasks want two annotators
    share = len(story["overlapping"]) / len(story["tasks"])
    assert 0.15 < share < 0.35, share


def test_disagreements_are_adjudicated_and_the_decisions_win(story):
    assert len(story["disagreed"]) >= 5
    queued = {t["data"]["passage_id"] for t in story["adjudication_tasks"]}
    assert queued == story["disagreed"]
    # The shipped annotations already hold adjudicated passages; this round adds exactly the disagreements.
    before = {d["passage_id"] for d in story["report_before"]["adjudicated"]}
    decided = {d["passage_id"] for d in story["report"]["adjudicated"]} - before
    assert decided == story["disagreed"] and not story["report"]["ties"]


def test_labels_reach_a_better_model_which_is_promoted_and_packaged(story):
    v2 = story["v2"]
    assert v2["version"] == "2" and v2["promoted"], v2["reason"]
    comparison = v2["comparison"]
    assert comparison["candidate_score"] > comparison["champion_score"] + 0.05, comparison
    assert comparison["passages"] >= 30  # test passages neither model trained on
    assert story["bento_v2"]["mlflow_version"] == "2"


@pytest.fixture(scope="module")
def served(story, repo):
    port = free_port()
    log = repo["dir"] / "serve.log"
    env = {**repo["env"], "FRAMING_API_KEY": ""}
    proc = start([sys.executable, "-m", "pipeline.cli", "serve", "--bento", "models/bento.json", "--port", str(port)],
                 env, log, repo["dir"])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", 90, proc, log)
        yield {"base": base, "log": log}
    finally:
        stop(proc)


def test_the_served_model_is_the_new_champion(served, repo):
    from pipeline.model import FramingModel

    meta = requests.post(f"{served['base']}/metadata", json={}, timeout=30).json()
    assert meta["model"]["version"] == "2"
    text = "Moscow and Pyongyang signed a treaty of comprehensive strategic partnership with a mutual defence clause."
    got = requests.post(f"{served['base']}/predict", json={"texts": [text]}, timeout=30).json()
    expected = FramingModel.load(repo["dir"] / "models/model.pkl").predict([text])[0]
    assert got["results"][0]["decided_frames"] == expected["decided_frames"]
    assert got["results"][0]["frames"] == expected["frames"] and got["results"][0]["stance"] == expected["stance"]


def test_label_studio_asks_the_served_champion_live(served, repo):
    framing(repo, "labelstudio", "connect-model", "--backend-url", f"{served['base']}/labelstudio")
    url, key = repo["env"]["LABEL_STUDIO_URL"], repo["env"]["LABEL_STUDIO_API_KEY"]
    ls = client.connect(url, key)
    pid = client.stored_project_id(repo["dir"] / ".labelstudio/project.json", url, client.ANNOTATION)
    text = "Analysts say the arms-for-oil exchange between Russia and North Korea is a marriage of convenience."
    ls.projects.import_tasks(id=pid, request=[{"data": {"text": text, "passage_id": "loop-live"}}])
    task = next(t for t in client.task_dicts(ls, url, pid) if t["data"]["passage_id"] == "loop-live")
    opened = requests.get(f"{url}/api/tasks/{task['id']}?project={pid}", headers={"Authorization": f"Token {key}"},
                          timeout=60).json()
    (prediction,) = opened["predictions"]
    assert prediction["model_version"] == "framing-classifier@v2"


def test_a_worse_candidate_is_registered_but_not_promoted(story, repo, served):
    params_file = repo["dir"] / "configs/params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["train"]["candidates"] = WORSE_CANDIDATES
    params_file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    champion_bytes = (repo["dir"] / "models/model.pkl").read_bytes()
    v3 = dvc_repro(repo)
    assert v3["version"] == "3" and not v3["promoted"] and v3["champion_version"] == "2", v3
    assert "champion kept" in v3["reason"]
    assert (repo["dir"] / "models/model.pkl").read_bytes() == champion_bytes  # model.pkl stays the champion
    assert (repo["dir"] / "models/candidate.pkl").exists()  # the rejected one, under its own name
    bento = json.loads((repo["dir"] / "models/bento.json").read_text(encoding="utf-8"))
    assert bento["mlflow_version"] == "2" and bento["model"] == story["bento_v2"]["model"]
    assert requests.post(f"{served['base']}/metadata", json={}, timeout=30).json()["model"]["version"] == "2"
