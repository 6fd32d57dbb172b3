"""`framing labelstudio install|start|stop|status|push|pull|connect-model|add-annotator|adjudicate`: the annotation loop.

Configuration comes from the environment or a `.env` file (see .env.example):
LABEL_STUDIO_URL, LABEL_STUDIO_PORT, LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD,
LABEL_STUDIO_USER_TOKEN (the admin's legacy token, set at first start) and
LABEL_STUDIO_API_KEY (what the client sends: a legacy token or a personal access token).
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipeline.labelstudio import server


def _settings(args) -> server.Settings:
    return server.load_settings(args.state_dir, port=getattr(args, "port", None), url=args.url,
                                data_dir=getattr(args, "data_dir", None))


def _client_url(args, settings: server.Settings) -> str:
    """The URL push/pull talk to: --url / LABEL_STUDIO_URL, else the server started from this state dir."""
    if args.url or settings.url != f"http://{server.HOST}:{settings.port}":
        return settings.url
    info = server.read_pid_file(settings)
    return (info or {}).get("url") or settings.url


def cmd_install(args) -> None:
    settings = _settings(args)
    changed = server.ensure_installed(settings)
    server.ensure_template(settings)
    print(f"Label Studio {'installed' if changed else 'already up to date'} in {settings.venv}")


def cmd_start(args) -> None:
    settings = _settings(args)
    st = server.start(settings, install=not args.no_install, timeout=args.timeout)
    settings = _settings(args)  # with the credentials start may have generated
    print(f"Label Studio is running at {st['url']} (pid {st['pid']}); data in {st['data_dir']}")
    stored = server.stored_secrets(settings)
    where = {"environment": "from the environment (or .env)", "stored": f"in {settings.credentials_file} (mode 0600)"}
    print(f"log in as {settings.username}; password {where[stored['password']]}, API token {where[stored['user_token']]}")
    from pipeline.labelstudio import client

    try:
        client.connect(st["url"], settings.api_key).users.whoami()
    except client.AuthError:
        print("warning: the API token is not accepted: the data dir was set up earlier with another token "
              "(LABEL_STUDIO_USER_TOKEN applies only on the first start). Set LABEL_STUDIO_API_KEY to the token "
              "shown in Account & Settings.", file=sys.stderr)


def cmd_stop(args) -> None:
    settings = _settings(args)
    print("Label Studio stopped" if server.stop(settings) else "Label Studio was not running")


def cmd_status(args) -> None:
    st = server.status(_settings(args))
    if args.json:
        print(json.dumps(st, indent=2))
    elif st["running"]:
        print(f"running at {st['url']} (pid {st['pid']}, {'healthy' if st['healthy'] else 'NOT healthy'}); "
              f"data in {st['data_dir']}; log {st['log']}")
    else:
        print(f"not running (installed: {'yes' if st['installed'] else 'no'}); start it with `framing labelstudio start`")
    if not (st["running"] and st["healthy"]):
        sys.exit(3)


def _connect(args):
    from pipeline.labelstudio import client

    settings = _settings(args)
    url = _client_url(args, settings)
    return client.connect(url, settings.api_key), url, settings


def _params(args):
    from pipeline.config import load_params

    return load_params(args.params)


def _guidelines_html(path: str) -> str:
    from pipeline.labelstudio import convert

    try:
        return convert.guidelines_html(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""


def _push_model(args, params):
    """The model behind pre-annotations: --model FILE, else the registry's champion (None: --no-model)."""
    from pipeline.labelstudio import push
    from pipeline.tracking import tracking_uri

    if args.no_model:
        return None
    if args.model:
        return push.file_model(args.model)
    return push.champion_model(tracking_uri(), params.train.model_name, params.train.alias)


def cmd_push(args) -> None:
    from pipeline.labelstudio import client, push
    from pipeline.schema import load_label_schema

    params = _params(args)
    schema = load_label_schema(args.labels)
    label_config = client.check_label_config(args.label_config, schema)
    settings_doc = client.project_settings(params.labelstudio, label_config=label_config,
                                           instructions=_guidelines_html(args.guidelines))
    passages = push.read_passages(args.passages)
    annotated = push.locally_annotated(args.annotations, schema)
    model = _push_model(args, params)
    ls, url, settings = _connect(args)
    summary = push.push(ls, url, state_file=settings.state_dir / "project.json", passages=passages,
                        annotated=annotated, schema=schema, settings=settings_doc, model=model,
                        title=args.title or params.labelstudio.title, project_id=args.project,
                        new_project=args.new_project, update_changed=args.update_changed,
                        backend_api_key=os.environ.get("FRAMING_API_KEY") or None)
    print(f"pushed to {url}")
    for line in summary.lines():
        print(f"  {line}")


def cmd_pull(args) -> None:
    from pipeline.dataset import read_passages
    from pipeline.labelstudio import client
    from pipeline.schema import load_label_schema

    params = _params(args)
    schema = load_label_schema(args.labels)
    passages = read_passages(args.passages) if Path(args.passages).exists() else None
    ls, url, settings = _connect(args)
    state = settings.state_dir / "project.json"
    kw = dict(state_file=state, annotations_dir=args.annotations, schema=schema, agreement_json=args.agreement_json,
              agreement_md=args.agreement_md, passages=passages, adjudicators=params.dataset.adjudicators)
    summaries = [client.pull(ls, url, **kw, project_id=args.project, title=params.labelstudio.title)]
    if args.project is None and client.stored_project_id(state, url, client.ADJUDICATION) is not None:
        summaries.append(client.pull(ls, url, **kw, role=client.ADJUDICATION))
    print(f"pulled from {url}")
    for summary in summaries:
        for line in summary.lines():
            print(f"  {line}")
    print(f"  wrote {args.agreement_json} and {args.agreement_md}")


def cmd_connect_model(args) -> None:
    from pipeline.labelstudio import client, mlbackend

    params = _params(args)
    ls, url, settings = _connect(args)
    pid = client.find_project(ls, url, settings.state_dir / "project.json", params.labelstudio.title,
                              project_id=args.project)
    if pid is None:
        raise client.LabelStudioError(f"no project titled {params.labelstudio.title!r} on {url}: "
                                      "run `framing labelstudio push` first")
    backend = mlbackend.connect_model(ls, url, pid, args.backend_url or params.labelstudio.backend_url,
                                      os.environ.get("FRAMING_API_KEY") or None)
    print(f"project {pid} {'now uses' if backend.created else 'still uses'} the ML backend {backend.url} "
          f"({backend.model_version}); annotators get its predictions, and push retrieves them from it")


def cmd_add_annotator(args) -> None:
    from pipeline.labelstudio import users

    ls, url, settings = _connect(args)
    annotator, created = users.add_annotator(ls, url, settings.state_dir, args.email)
    where = settings.state_dir / users.ANNOTATORS_FILE
    print(f"{'added' if created else 'already added:'} {annotator.email} (user {annotator.user_id}); log in at "
          f"{url}/user/login/ with the password in {where} (mode 0600)")


def cmd_adjudicate(args) -> None:
    from pipeline import annotations
    from pipeline.dataset import read_passages
    from pipeline.labels import adjudication_config_xml
    from pipeline.labelstudio import adjudication
    from pipeline.schema import load_label_schema

    params = _params(args)
    schema = load_label_schema(args.labels)
    records = annotations.read_exports(args.annotations, schema, params.dataset.adjudicators)
    passages = read_passages(args.passages)
    review = adjudication.read_review_ids(args.review, passages) if args.review else []
    ls, url, settings = _connect(args)
    summary = adjudication.push_disagreements(
        ls, url, state_file=settings.state_dir / "project.json", records=records,
        passages=passages, schema=schema, title=params.labelstudio.adjudication_title,
        label_config=adjudication_config_xml(schema), instructions=_guidelines_html(args.guidelines),
        project_id=args.project, review=review)
    print(f"pushed to {url}")
    for line in summary.lines():
        print(f"  {line}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framing labelstudio", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=str(server.STATE_DIR),
                        help="venv, data dir, pid file, credentials and project id (default: .labelstudio)")
    common.add_argument("--url", help="Label Studio URL (default: LABEL_STUDIO_URL, else the server started here)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("install", parents=[common],
                       help="install the server into <state-dir>/venv from labelstudio/requirements.lock (CI)")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("start", parents=[common], help="install (if needed) and start the server on 127.0.0.1")
    p.add_argument("--port", type=int, help="default: LABEL_STUDIO_PORT or 8080")
    p.add_argument("--data-dir", help="default: <state-dir>/data")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing from the lock")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for /health")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", parents=[common], help="stop the server started from this state dir")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("status", parents=[common], help="is it running and healthy (exit 3 if not)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("--params", default="configs/params.yaml")
    files.add_argument("--labels", default="configs/labels.yaml")
    files.add_argument("--passages", default="data/passages.jsonl")
    files.add_argument("--annotations", default="labels/annotations")
    files.add_argument("--guidelines", default="labels/GUIDELINES.md")
    files.add_argument("--project", type=int, help="project id (default: the stored one, else the one with the title)")

    p = sub.add_parser("push", parents=[common, files],
                       help="create/update the project; import unannotated passages, pre-annotated by the champion")
    p.add_argument("--label-config", default="labels/label_config.xml")
    p.add_argument("--model", help="a FramingModel file instead of the registry's champion")
    p.add_argument("--no-model", action="store_true", help="push without predictions")
    p.add_argument("--title", help="project title (default: labelstudio.title in params.yaml)")
    p.add_argument("--new-project", action="store_true",
                   help="create the project again after it was deleted on the server (refused while it exists)")
    p.add_argument("--update-changed", action="store_true",
                   help="bring in passages whose text changed: an unlabelled old task gets the new text, a "
                        "labelled one keeps its annotations and the new text becomes a new task")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", parents=[common, files],
                       help="export annotations (and adjudications) into labels/annotations/; write the agreement report")
    p.add_argument("--agreement-json", default="metrics/agreement.json")
    p.add_argument("--agreement-md", default="labels/AGREEMENT.md")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("connect-model", parents=[common, files],
                       help="connect the prediction service's ML backend, so annotators see the champion's predictions")
    p.add_argument("--backend-url", help="default: labelstudio.backend_url in params.yaml")
    p.set_defaults(func=cmd_connect_model)

    p = sub.add_parser("add-annotator", parents=[common], help="sign an annotator up into the organisation")
    p.add_argument("email")
    p.set_defaults(func=cmd_add_annotator)

    p = sub.add_parser("adjudicate", parents=[common, files],
                       help="queue every passage the annotators disagree on for an adjudicator")
    p.add_argument("--review", type=Path, metavar="FILE",
                   help="also queue these passages (one id per line), agreed on or not: a re-review after a "
                        "guideline revision")
    p.set_defaults(func=cmd_adjudicate)
    return parser


def main(argv: list[str] | None = None) -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":  # `python -m pipeline.labelstudio.cli install` before `framing` knows the command
    main()
