"""A throwaway copy of the repository for tests that run `dvc repro` (as a fresh clone would)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines, progress-bar redraws dropped."""
    kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line for line in kept if line.strip())[-6000:] if len(kept) < lines else \
        "\n".join(line for line in kept[-lines:] if line.strip())


def sh(cmd: list[str], cwd: Path, env: dict, timeout: float = 900) -> str:
    """Run ``cmd``; its stdout, or a failure showing the end of both streams."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(map(str, cmd))} failed (exit {done.returncode}):\n"
                                  f"--- stdout\n{_tail(done.stdout)}\n--- stderr\n{_tail(done.stderr)}")
    return done.stdout


def clone(root: Path, dest: Path, keep=lambda rel: True) -> tuple[Path, dict]:
    """Copy the working tree's tracked files (plus untracked, not ignored ones) for which ``keep(rel)``
    holds into ``dest``, commit them in a new git repository, and return (dest, environment): the
    project's virtualenv first on PATH, MLflow in a SQLite file inside the copy, the distill stage's
    virtualenv shared with the checkout (installed once per machine)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (root / rel).is_file() and keep(rel):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}", "PYTHONPATH": str(dest),
           "BENTOML_HOME": str(dest / ".bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "FRAMING_DISTILL_VENV": str(root / ".venv-distill")}
    sh(["git", "init", "-q"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "clone"], dest, env)
    return dest, env
