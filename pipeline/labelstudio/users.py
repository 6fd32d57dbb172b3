"""`framing labelstudio add-annotator EMAIL`: an annotator account in the project's organisation.

Label Studio's community edition puts a user into the organisation only through its sign-up
page with the organisation's invite token (``POST /api/users/`` makes a user who belongs nowhere
and cannot log in). So this signs the annotator up exactly as the invite link would, then reads
the new account's API token. Password and token are kept like the admin's: in
``<state dir>/annotators.json`` (mode 0600), never printed or logged.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.fsutil import atomic_open
from pipeline.labelstudio.client import LabelStudioError, api_errors

log = logging.getLogger(__name__)

ANNOTATORS_FILE = "annotators.json"


@dataclass(frozen=True)
class Annotator:
    email: str
    user_id: int
    password: str = field(repr=False)
    token: str = field(repr=False)


def read_annotators(state_dir: Path) -> dict[str, Annotator]:
    """The annotator accounts created from this state dir, by email."""
    try:
        raw = json.loads((Path(state_dir) / ANNOTATORS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        raise InputError(f"{Path(state_dir) / ANNOTATORS_FILE}: malformed; restore it or delete it and add the "
                         "annotators again") from None
    return {email: Annotator(email, int(a["user_id"]), a["password"], a["token"]) for email, a in raw.items()}


def _store(state_dir: Path, annotators: dict[str, Annotator]) -> None:
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    with atomic_open(Path(state_dir) / ANNOTATORS_FILE) as fh:
        os.chmod(fh.fileno(), 0o600)
        json.dump({a.email: {"user_id": a.user_id, "password": a.password, "token": a.token}
                   for a in annotators.values()}, fh, indent=2)


def add_annotator(ls, url: str, state_dir: Path, email: str, password: str | None = None) -> tuple[Annotator, bool]:
    """Sign ``email`` up into the admin's organisation; returns (the account, created). Idempotent for
    accounts this state dir created; an email someone else signed up is an error (we hold no token)."""
    import httpx

    email = email.strip().lower()
    if "@" not in email:
        raise InputError(f"{email!r}: not an email address")
    known = read_annotators(state_dir)
    if email in known:
        return known[email], False
    with api_errors(url, "reading the organisation's invite link"):
        invite = ls._client_wrapper.httpx_client.request("api/invite", method="GET")  # no SDK method for GET
    if invite.status_code != 200:
        raise LabelStudioError(f"reading the invite link: Label Studio at {url} answered {invite.status_code} "
                               "(the API token must be an organisation admin's)")
    token = invite.json()["token"]
    password = password or secrets.token_urlsafe(18)
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as browser:
        try:
            page = browser.get(f"/user/signup/?token={token}")
            csrf = browser.cookies.get("csrftoken") or ""
            done = browser.post(f"/user/signup/?token={token}", data={
                "email": email, "password": password, "csrfmiddlewaretoken": csrf, "allow_newsletters": ""},
                headers={"Referer": f"{url}/user/signup/?token={token}"})
            if done.status_code != 302:  # a form re-rendered with errors (e.g. the email is taken)
                problem = "that email already has an account" if "already exists" in done.text else \
                    f"the sign-up page answered {done.status_code} (page {page.status_code})"
                raise LabelStudioError(f"adding {email}: {problem}; annotators this machine added are in "
                                       f"{Path(state_dir) / ANNOTATORS_FILE}")
            me = browser.get("/api/current-user/whoami").json()
            api_token = browser.get("/api/current-user/token").json()["token"]
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"adding {email}: cannot reach Label Studio at {url} ({type(exc).__name__})") from None
    annotator = Annotator(email, int(me["id"]), password, api_token)
    _store(state_dir, {**known, email: annotator})
    log.info("labelstudio: added annotator %s (user %d); password and token in %s", email, annotator.user_id,
             Path(state_dir) / ANNOTATORS_FILE)
    return annotator, True
