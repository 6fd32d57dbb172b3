"""`framing labelstudio install|start|stop|status|push|pull`: the annotation loop with a local Label Studio.

Configuration comes from the environment or a `.env` file (see .env.example):
LABEL_STUDIO_URL, LABEL_STUDIO_PORT, LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD,
LABEL_STUDIO_USER_TOKEN (the admin's legacy token, set at first start) and
LABEL_STUDIO_API_KEY (what the client sends: a legacy token or a personal access token).
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
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
    print(f"Label Studio is running at {st['url']} (pid {st['pid']}); data in {st['data_dir']}")
    print(f"log in as {settings.username}; the password and API token are "
          + ("from the environment" if settings.password and settings.user_token
             else f"in {settings.credentials_file} (mode 0600)"))
    from pipeline.labelstudio import client

    settings = _settings(args)  # with the credentials start may have generated
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


def cmd_push(args) -> None:
    from pipeline.schema import load_label_schema
    from pipeline.labelstudio import client, convert

    schema = load_label_schema(args.labels)
    label_config = client.check_label_config(args.label_config, schema)
    try:
        guidelines = Path(args.guidelines).read_text(encoding="utf-8")
    except FileNotFoundError:
        guidelines = ""
    passages = client.read_passages(args.passages)
    annotated = client.locally_annotated(args.annotations, schema)
    model = None if args.no_model else client.load_model(args.model)
    ls, url, settings = _connect(args)
    summary = client.push(ls, url, state_file=settings.state_dir / "project.json", passages=passages,
                          annotated=annotated, schema=schema, label_config=label_config,
                          instructions=convert.guidelines_html(guidelines), model=model, title=args.title,
                          new_project=args.new_project, import_changed=args.import_changed)
    print(f"pushed to {url}")
    for line in summary.lines():
        print(f"  {line}")


def cmd_pull(args) -> None:
    from pipeline.schema import load_label_schema
    from pipeline.dataset import read_passages
    from pipeline.labelstudio import client

    schema = load_label_schema(args.labels)
    passages = read_passages(args.passages) if Path(args.passages).exists() else None
    ls, url, settings = _connect(args)
    summary = client.pull(ls, url, state_file=settings.state_dir / "project.json", annotations_dir=args.annotations,
                          schema=schema, agreement_json=args.agreement_json, agreement_md=args.agreement_md,
                          passages=passages, project_id=args.project)
    print(f"pulled from {url}")
    for line in summary.lines():
        print(f"  {line}")
    print(f"  wrote {args.agreement_json} and {args.agreement_md}")


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
    files.add_argument("--labels", default="configs/labels.yaml")
    files.add_argument("--passages", default="data/passages.jsonl")
    files.add_argument("--annotations", default="labels/annotations")

    p = sub.add_parser("push", parents=[common, files],
                       help="create/update the project; import unannotated passages with model pre-annotations")
    p.add_argument("--label-config", default="labels/label_config.xml")
    p.add_argument("--guidelines", default="labels/GUIDELINES.md")
    p.add_argument("--model", default="models/model.pkl", help="pickled FramingModel; optional")
    p.add_argument("--no-model", action="store_true", help="push without predictions")
    p.add_argument("--title", default="Framing: Russia–North Korea passages")
    p.add_argument("--new-project", action="store_true",
                   help="create a new project even if one is stored (after it was deleted on the server)")
    p.add_argument("--import-changed", action="store_true",
                   help="also import passages whose text changed since their old task was imported")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", parents=[common, files],
                       help="export annotations into labels/annotations/ (merged) and write the agreement report")
    p.add_argument("--project", type=int, help="project id (default: the one push stored)")
    p.add_argument("--agreement-json", default="metrics/agreement.json")
    p.add_argument("--agreement-md", default="labels/AGREEMENT.md")
    p.set_defaults(func=cmd_pull)
    return parser


def main(argv: list[str] | None = None) -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":  # `python -m pipeline.labelstudio.cli install` before `framing` knows the command
    main()
