"""File helpers: atomic writes (outputs appear whole or not at all), YAML reading, the project root."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from pipeline.errors import InputError


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode (secrets chmod their own)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def write_json_array(path: str | Path, items: list) -> None:
    """A JSON array with one compact item per line: a Label Studio export stays valid JSON, a third of
    its indented size, and a changed annotation changes one line of the diff. A ``.gz`` path is
    gzip-compressed, the same bytes for the same items (no time stamp or name in the header)."""
    text = "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items) + "\n]\n"
    if not str(path).endswith(".gz"):
        with atomic_open(path) as fh:
            fh.write(text)
        return
    with atomic_open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory in a temp sibling; swap it in place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


EXEC_TMP = os.path.join(".dvc", "tmp", "exps")  # where `dvc exp run --temp` builds its workspace


def project_root(cwd: str | Path | None = None) -> Path:
    """The project folder; inside a `dvc exp run --temp` workspace, the original one it was copied from."""
    cwd = Path(cwd or os.getcwd()).resolve()
    text = cwd.as_posix()
    marker = "/" + EXEC_TMP.replace(os.sep, "/") + "/"
    if marker in text + "/":
        return Path(text[: (text + "/").index(marker)])
    return cwd


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path``; InputError naming the file when it is missing or malformed."""
    import yaml

    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}") from None
