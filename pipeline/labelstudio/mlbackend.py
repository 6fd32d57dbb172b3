"""`framing labelstudio connect-model`: connect the prediction service's ML backend to the project.

The served champion then pre-annotates: Label Studio asks it for a task that has no prediction
when an annotator opens it, and `framing labelstudio push` has it retrieve predictions for the
tasks it imports. Label Studio names a live model by the backend record's title, so the title
is the backend's ``model_version`` (``framing-classifier@v3``), and connecting again after the
champion moved updates it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pipeline.errors import InputError
from pipeline.labelstudio.client import LabelStudioError, api_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    url: str
    model_version: str
    record_id: int
    created: bool


def backend_version(backend_url: str, api_key: str | None = None, timeout: float = 10.0) -> str:
    """The ``model_version`` the ML backend at ``backend_url`` serves (its /health); InputError when it does not answer."""
    import httpx

    auth = ("labelstudio", api_key) if api_key else None
    try:
        resp = httpx.get(backend_url.rstrip("/") + "/health", auth=auth, timeout=timeout)
    except httpx.HTTPError as exc:
        raise InputError(f"the ML backend at {backend_url} does not answer ({type(exc).__name__}); start the "
                         "prediction service first (`framing serve --port 3000`)") from None
    if resp.status_code == 401:
        raise InputError(f"the ML backend at {backend_url} wants an API key: set FRAMING_API_KEY to the service's key")
    if resp.status_code != 200 or "model_version" not in (resp.json() if resp.content else {}):
        raise InputError(f"{backend_url}/health answered {resp.status_code}; is it the prediction service's "
                         "/labelstudio backend?")
    return str(resp.json()["model_version"])


def connect_model(ls, url: str, project_id: int, backend_url: str, api_key: str | None = None) -> Backend:
    """Create (or update) the project's ML backend record for ``backend_url`` and let the project use it.

    Checks the backend answers before touching the server, and removes a record Label Studio
    half-created when it then refuses the connection, so a failure leaves nothing behind.
    """
    backend_url = backend_url.rstrip("/")
    version = backend_version(backend_url, api_key)
    auth = dict(auth_method="BASIC_AUTH", basic_auth_user="labelstudio", basic_auth_pass=api_key) if api_key else \
        dict(auth_method="NONE")
    with api_errors(url, f"listing the ML backends of project {project_id}"):
        before = {b.id: b for b in ls.ml.list(project=project_id)}
    same = [b for b in before.values() if (b.url or "").rstrip("/") == backend_url]
    try:
        if same:
            record = same[0].id
            with api_errors(url, f"updating ML backend {record}"):
                ls.ml.update(id=record, url=backend_url, project=project_id, title=version, is_interactive=False,
                             **auth)
        else:
            with api_errors(url, f"connecting the ML backend {backend_url}"):
                record = ls.ml.create(url=backend_url, project=project_id, title=version, is_interactive=False,
                                      **auth).id
    except LabelStudioError as exc:
        with api_errors(url, "cleaning up after the failed connection"):
            for b in ls.ml.list(project=project_id):
                if b.id not in before and (b.url or "").rstrip("/") == backend_url:
                    ls.ml.delete(id=b.id)
        hint = (" Label Studio refuses loopback addresses unless started with ML_BLOCK_LOCAL_IP=false, as "
                "`framing labelstudio start` does: restart it with that command." if "reserved" in str(exc) else "")
        raise LabelStudioError(f"{exc}{hint}") from None
    with api_errors(url, f"letting project {project_id} use the backend"):
        ls.projects.update(id=project_id, model_version=version, show_collab_predictions=True,
                           evaluate_predictions_automatically=True)
    log.info("labelstudio: project %d uses the ML backend %s (%s)", project_id, backend_url, version)
    return Backend(url=backend_url, model_version=version, record_id=record, created=not same)
