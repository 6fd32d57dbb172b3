"""Label Studio fixtures: a real server started by the project's own start code.

The server's virtualenv is the project's (.labelstudio/venv, installed from
labelstudio/requirements.lock on first use); its state and data dir live in a temp
folder, on a free port. If it cannot start, the tests fail (never skip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_port, start, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory):
    """Settings of a running Label Studio (admin user and legacy token created from the settings)."""
    from pipeline.errors import InputError
    from pipeline.labelstudio import server

    state = tmp_path_factory.mktemp("labelstudio")
    env = {"LABEL_STUDIO_USERNAME": "admin@example.org"}  # password and token: generated and stored
    settings = server.load_settings(state, port=server.free_port(), env=env, dotenv=None,
                                    venv=ROOT / ".labelstudio" / "venv", lock_file=ROOT / "labelstudio" / "requirements.lock")
    started = time.monotonic()
    try:
        server.start(settings, timeout=240)
    except InputError as exc:
        pytest.fail(f"Label Studio could not be started for the integration tests: {exc}", pytrace=False)
    print(f"\nLabel Studio started in {time.monotonic() - started:.1f} s at {settings.url}")
    settings = server.load_settings(state, port=settings.port, env=env, dotenv=None, venv=settings.venv,
                                    lock_file=settings.lock_file)  # now with the stored credentials
    yield settings
    server.stop(settings)


@pytest.fixture(scope="session")
def ls_client(ls_server):
    from pipeline.labelstudio import client

    return client.connect(ls_server.url, ls_server.api_key)


@pytest.fixture(scope="session")
def ls_workspace(tmp_path_factory, params):
    """Passages ingested from the seed documents only (a small project), an empty annotations folder and output paths."""
    from pipeline import ingest

    work = tmp_path_factory.mktemp("ls_work")
    ingest.run([ROOT / "seeds"], work / "passages.jsonl", work / "ingest.json", params.ingest, params.seed)
    (work / "annotations").mkdir()
    passages = [json.loads(line) for line in (work / "passages.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"dir": work, "passages": work / "passages.jsonl", "annotations": work / "annotations",
            "agreement_json": work / "metrics" / "agreement.json", "agreement_md": work / "AGREEMENT.md",
            "passage_list": passages}


@pytest.fixture(scope="session")
def packaged(trained, root):
    """The trained champion, packaged by `framing package` into a throwaway BentoML home."""
    from pipeline.model import FramingModel

    work, tracking = trained["work"], trained["tracking"]
    env = {**os.environ, "BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "MLFLOW_TRACKING_URI": tracking, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "package", "--registry", str(work / "registry.json"),
         "--metrics", str(work / "cv.json"), "--bento", str(work / "bento.json")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((work / "bento.json").read_text())
    name, version = record["model"].split(":")
    model = FramingModel.load(work / "bentoml" / "models" / name / version / "model.pkl")
    return {"work": work, "env": env, "record": record, "model": model}


def serve(packaged, root, log_name: str, extra_env: dict) -> tuple[str, object, float]:
    """Start `framing serve` on the packaged Bento; (base URL, process, seconds until ready)."""
    port = free_port()
    env = {**packaged["env"], **extra_env}
    log = packaged["work"] / log_name
    proc = start([sys.executable, "-m", "pipeline.cli", "serve", "--bento", str(packaged["work"] / "bento.json"),
                  "--port", str(port)], env, log, root)
    base = f"http://127.0.0.1:{port}"
    ready = wait_http(f"{base}/readyz", 60, proc, log)
    return base, proc, ready


@pytest.fixture(scope="session")
def backend(packaged, root):
    """The packaged champion served by `framing serve`: its ML backend for Label Studio, and its log."""
    base, proc, _ = serve(packaged, root, "serve_backend.log", {"FRAMING_ACCESS_LOG": "on", "FRAMING_API_KEY": ""})
    yield {"base": base, "url": f"{base}/labelstudio", "log": packaged["work"] / "serve_backend.log", **packaged}
    stop(proc)
