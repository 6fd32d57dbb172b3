"""`framing serve`: run the packaged Bento with `bentoml serve` on this machine.

Equivalent to ``BENTOML_HOME=.bentoml bentoml serve <bento tag from models/bento.json>``, with
FRAMING_WORKERS, FRAMING_ACCESS_LOG and FRAMING_TRACING passed to BentoML as configuration
overrides. BentoML's server runs in this process (Ctrl-C and signals go straight to it), with
its workers watched: a worker's death is logged with its cause and it is replaced at once
(``pipeline.workers``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from pipeline.errors import InputError
from pipeline.package import project_bentoml_home


def command(bento: str | Path, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The `bentoml serve` command line for the Bento recorded in ``bento``, and the environment
    variables it needs on top of this process's."""
    try:
        record = json.loads(Path(bento).read_text(encoding="utf-8"))
        tag = record["bento"]
    except FileNotFoundError:
        raise InputError(f"{bento}: not found; run `dvc repro` (stage package) first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{bento}: not a Bento record written by the package stage ({exc!r}); "
                         "run `dvc repro` (stage package)") from None
    exe = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or shutil.which("bentoml")
    if exe is None:
        raise InputError("the `bentoml` command is not installed; run `bash scripts/setup.sh`")
    from serving.settings import Settings

    try:
        overrides = Settings.from_env().bentoml_overrides()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    extra = os.environ.get("BENTOML_CONFIG_OPTIONS")
    env = {"BENTOML_CONFIG_OPTIONS": f"{overrides} {extra}" if extra else overrides}
    return [exe, "serve", tag, "--host", host, "--port", str(port)], env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing serve", description=__doc__.splitlines()[0])
    parser.add_argument("--bento", default="models/bento.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    cmd, env = command(args.bento, args.host, args.port)
    project_bentoml_home()
    os.environ.update(env)
    from pipeline.workers import serve

    serve(cmd[1:])  # `bentoml serve ...` in this process, its workers' deaths logged and repaired at once
