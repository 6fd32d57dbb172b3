"""Label Studio fixtures: a real server started by the project's own start code.

The server's virtualenv is the project's (.labelstudio/venv, installed from
labelstudio/requirements.lock on first use); its state and data dir live in a temp
folder, on a free port. If it cannot start, the tests fail (never skip).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

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
    """Passages ingested from the seeds, an empty annotations folder and output paths."""
    from pipeline import ingest

    work = tmp_path_factory.mktemp("ls_work")
    ingest.run(ROOT / params.ingest.input_dir, work / "passages.jsonl", work / "ingest.json", params.ingest, params.seed)
    (work / "annotations").mkdir()
    passages = [json.loads(line) for line in (work / "passages.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"dir": work, "passages": work / "passages.jsonl", "annotations": work / "annotations",
            "agreement_json": work / "metrics" / "agreement.json", "agreement_md": work / "AGREEMENT.md",
            "passage_list": passages}
