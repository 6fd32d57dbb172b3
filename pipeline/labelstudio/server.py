"""A local Label Studio server: its own virtualenv, data dir, admin user and API token.

Everything lives under the state dir (``.labelstudio/``, git-ignored):

- ``venv/``            the server's virtualenv, installed from labelstudio/requirements.lock
                       (stamped by the lock's hash, so re-running ``start`` installs nothing
                       when the lock is unchanged);
- ``template/``        an empty, fully migrated database per lock hash, copied into new
                       data dirs so a first start skips Django's ~30 s of migrations;
- ``data/``            the server's data dir (SQLite database, uploads, exports);
- ``server.json``      pid, port and URL of the running server (the pid file);
- ``server.log``       the server's output;
- ``credentials.json`` (mode 0600) the admin password and API token generated when the
                       environment sets none. Secrets are never printed or logged.

Token mode: the admin's *legacy* API token. Label Studio 1.2x creates new organisations
with legacy tokens off; ``start`` creates the organisation with them on
(``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``) and sets the admin's token from
``LABEL_STUDIO_USER_TOKEN`` (or a generated one), non-interactively. The client accepts a
personal access token (a JWT refresh token) in ``LABEL_STUDIO_API_KEY`` as well: the SDK
then exchanges it for short-lived access tokens itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.fsutil import atomic_open, write_json

log = logging.getLogger(__name__)

STATE_DIR = Path(".labelstudio")
LOCK_FILE = Path("labelstudio/requirements.lock")
DEFAULT_PORT = 8080
DEFAULT_USERNAME = "admin@localhost"
HOST = "127.0.0.1"
# Plain names Label Studio also reads (get_env tries LABEL_STUDIO_X, HEARTEX_X, then X):
# an unrelated USERNAME or PORT in the caller's shell must not leak into the server.
_SCRUB = ("USERNAME", "PASSWORD", "USER_TOKEN", "PORT", "HOST", "DATABASE_NAME", "BASE_DATA_DIR")


class ServerError(InputError):
    """The server could not be installed, started, reached or stopped."""


@dataclass(frozen=True)
class Settings:
    """Where the server lives and how to reach it. Secrets are excluded from repr."""

    state_dir: Path
    port: int
    url: str
    username: str
    password: str = field(repr=False)
    user_token: str = field(repr=False)
    api_key: str = field(repr=False)
    data_dir: Path = Path()
    lock_file: Path = LOCK_FILE
    venv_dir: Path | None = None  # default: state_dir/venv (tests share the project's)

    @property
    def venv(self) -> Path:
        return self.venv_dir or self.state_dir / "venv"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.json"


def read_dotenv(path: str | Path = ".env") -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines and `export ` allowed); {} if absent."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def load_settings(state_dir: str | Path = STATE_DIR, *, port: int | None = None, url: str | None = None,
                  data_dir: str | Path | None = None, env: dict[str, str] | None = None,
                  dotenv: str | Path | None = ".env", lock_file: str | Path = LOCK_FILE,
                  venv: str | Path | None = None) -> Settings:
    """Settings from (in order) arguments, the environment, ``.env``, then the stored credentials."""
    state_dir = Path(state_dir).absolute()
    merged = dict(read_dotenv(dotenv) if dotenv else {})
    merged.update(os.environ if env is None else env)
    stored = _read_credentials(state_dir / "credentials.json")
    try:
        port = int(port or merged.get("LABEL_STUDIO_PORT") or DEFAULT_PORT)
    except ValueError:
        raise InputError(f"LABEL_STUDIO_PORT: not a port number: {merged.get('LABEL_STUDIO_PORT')!r}") from None
    url = (url or merged.get("LABEL_STUDIO_URL") or f"http://{HOST}:{port}").rstrip("/")
    user_token = merged.get("LABEL_STUDIO_USER_TOKEN") or stored.get("user_token", "")
    return Settings(
        state_dir=state_dir, port=port, url=url,
        username=merged.get("LABEL_STUDIO_USERNAME") or stored.get("username") or DEFAULT_USERNAME,
        password=merged.get("LABEL_STUDIO_PASSWORD") or stored.get("password", ""),
        user_token=user_token,
        api_key=merged.get("LABEL_STUDIO_API_KEY") or user_token,
        data_dir=Path(data_dir).absolute() if data_dir else state_dir / "data",
        lock_file=Path(lock_file).absolute(), venv_dir=Path(venv).absolute() if venv else None,
    )


def _read_credentials(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def stored_secrets(settings: Settings) -> dict[str, str]:
    """Where the password and the API token come from: "stored" (credentials.json) or "environment"."""
    stored = _read_credentials(settings.credentials_file)
    return {k: "stored" if stored.get(k) and stored.get(k) == getattr(settings, k) else "environment"
            for k in ("password", "user_token")}


def ensure_credentials(settings: Settings) -> Settings:
    """Generate (once) and store the password and token the environment does not set."""
    if settings.password and settings.user_token:
        return settings
    stored = _read_credentials(settings.credentials_file)
    stored.setdefault("username", settings.username)
    password = settings.password or stored.get("password") or secrets.token_urlsafe(18)
    token = settings.user_token or stored.get("user_token") or secrets.token_hex(20)  # legacy tokens: 40 hex
    if not settings.password:  # only generated secrets are stored; the environment's stay there
        stored["password"] = password
    if not settings.user_token:
        stored["user_token"] = token
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(settings.credentials_file) as fh:
        os.chmod(fh.name, 0o600)
        json.dump(stored, fh, indent=2)
    log.info("labelstudio: generated credentials stored in %s (mode 0600)", settings.credentials_file)
    return Settings(**{**settings.__dict__, "password": password, "user_token": token,
                       "api_key": settings.api_key or token})


# -- install -------------------------------------------------------------------------------

def lock_hash(lock_file: Path) -> str:
    try:
        data = lock_file.read_bytes()
    except FileNotFoundError:
        raise ServerError(f"{lock_file}: lock file not found (run from the project root)") from None
    # The install recipe is part of the stamp: installs from before bytecode compilation redo it.
    return hashlib.sha256(data + sys.version.split()[0].encode() + b"\0compile-bytecode").hexdigest()


def _uv() -> list[str] | None:
    """A uv command: the `uv` module of this Python (scripts/setup.sh installs it), else uv on PATH."""
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    found = shutil.which("uv")
    return [found] if found else None


def ensure_installed(settings: Settings) -> bool:
    """Install the server into ``settings.venv`` from the lock; False when already up to date."""
    want = lock_hash(settings.lock_file)
    stamp = settings.venv / ".lock-sha256"
    exe = settings.venv / "bin" / "label-studio"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return False
    log.info("labelstudio: installing Label Studio into %s from %s (takes a minute)", settings.venv, settings.lock_file)
    started = time.monotonic()
    uv = _uv()
    py = settings.venv / "bin" / "python"
    if uv:
        steps = [[*uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(settings.venv)],
                 [*uv, "pip", "sync", "--quiet", "--compile-bytecode", "--python", str(py), "--require-hashes",
                  str(settings.lock_file)]]
    else:
        steps = [[sys.executable, "-m", "venv", str(settings.venv)],
                 [str(py), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(settings.lock_file)]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServerError(f"installing Label Studio failed: {' '.join(cmd[-3:])}:\n{done.stderr.strip()[-2000:]}")
    stamp.write_text(want + "\n")
    log.info("labelstudio: installed in %.1f s", time.monotonic() - started)
    return True


def _server_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("HEARTEX_")}
    env.update({
        "LABEL_STUDIO_USERNAME": settings.username,
        "LABEL_STUDIO_PASSWORD": settings.password,
        "LABEL_STUDIO_USER_TOKEN": settings.user_token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # only read when the organisation is created
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LATEST_VERSION_CHECK": "false",  # no PyPI call on every start
        # The ML backend (the prediction service) runs on this machine: Label Studio must be allowed
        # to call 127.0.0.1, for predictions (ML_BLOCK_LOCAL_IP) and for the backend's training
        # webhook (SSRF_PROTECTION_ENABLED). The trade-off: anyone who can log in could make the
        # server fetch loopback URLs; the server itself listens on 127.0.0.1 only (README).
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
        "LOG_LEVEL": env.get("LABEL_STUDIO_LOG_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def ensure_template(settings: Settings) -> Path:
    """An empty migrated SQLite database for this lock (built once: ~30 s of migrations)."""
    template = settings.venv.parent / "template" / lock_hash(settings.lock_file)[:16] / "label_studio.sqlite3"
    if template.exists():
        return template
    template.parent.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="template.", dir=template.parent.parent))
    try:
        env = _server_env(settings, work)
        for key in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN"):
            env.pop(key)
        # `label-studio user` migrates the database first, then looks the user up (and prints that it is missing).
        done = subprocess.run([str(settings.venv / "bin" / "label-studio"), "user", "--username", "nobody@localhost",
                               "--data-dir", str(work)], env=env, capture_output=True, text=True, cwd=work)
        db = work / "label_studio.sqlite3"
        if not db.exists():
            raise ServerError(f"migrating a fresh Label Studio database failed:\n{(done.stdout + done.stderr)[-2000:]}")
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(db, work / "db.tmp")
        os.replace(work / "db.tmp", template)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return template


# -- run -----------------------------------------------------------------------------------

def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    """A live, non-zombie process that is a Label Studio server (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(FileNotFoundError):  # a zombie child of ours is not alive
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    with contextlib.suppress(FileNotFoundError):
        return b"label-studio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return True


def read_pid_file(settings: Settings) -> dict | None:
    try:
        info = json.loads(settings.pid_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def status(settings: Settings) -> dict:
    """{"running", "healthy", "pid", "url", "data_dir", "installed"} of the server in this state dir."""
    info = read_pid_file(settings) or {}
    pid = info.get("pid")
    running = bool(pid) and _alive(pid)
    url = info.get("url") or settings.url
    return {"running": running, "healthy": healthy(url) if running else False, "pid": pid if running else None,
            "url": url, "data_dir": info.get("data_dir") or str(settings.data_dir),
            "installed": (settings.venv / "bin" / "label-studio").exists(), "log": str(settings.log_file)}


def start(settings: Settings, *, install: bool = True, timeout: float = 180.0) -> dict:
    """Install if needed, start the server on 127.0.0.1:port, wait for /health; return status().

    Idempotent: a healthy server already started from this state dir is left running.
    """
    current = status(settings)
    if current["running"]:
        if current["healthy"] or _wait_healthy(current["url"], current["pid"], 60):
            log.info("labelstudio: already running at %s (pid %s)", current["url"], current["pid"])
            return status(settings)
        raise ServerError(f"a server (pid {current['pid']}) is running but {current['url']}/health does not answer; "
                          f"run `framing labelstudio stop` and start again (log: {settings.log_file})")
    if install:
        ensure_installed(settings)
    exe = settings.venv / "bin" / "label-studio"
    if not exe.exists():
        raise ServerError(f"{exe}: Label Studio is not installed (run `framing labelstudio start` without --no-install)")
    if not _port_free(settings.port):
        raise ServerError(f"port {settings.port} on {HOST} is in use; set LABEL_STUDIO_PORT or pass --port")
    settings = ensure_credentials(settings)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "label_studio.sqlite3"
    if not db.exists():
        shutil.copyfile(ensure_template(settings), db)
    url = f"http://{HOST}:{settings.port}"
    cmd = [str(exe), "start", "--no-browser", "--data-dir", str(data_dir),
           "--internal-host", HOST, "--port", str(settings.port), "--enable-legacy-api-token"]
    started = time.monotonic()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.log_file, "ab") as logfh:
        proc = subprocess.Popen(cmd, env=_server_env(settings, data_dir), stdout=logfh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=data_dir, start_new_session=True)
    write_json(settings.pid_file, {"pid": proc.pid, "port": settings.port, "url": url, "data_dir": str(data_dir),
                                   "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if not _wait_healthy(url, proc.pid, timeout, proc):
        tail = _log_tail(settings.log_file)
        _terminate(proc.pid)
        settings.pid_file.unlink(missing_ok=True)
        raise ServerError(f"Label Studio did not become healthy at {url}/health within {timeout:.0f} s; "
                          f"last lines of {settings.log_file}:\n{tail}")
    log.info("labelstudio: running at %s (pid %d, started in %.1f s, data in %s)",
             url, proc.pid, time.monotonic() - started, data_dir)
    return status(settings)


def _wait_healthy(url: str, pid: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if proc is None and not _alive(pid):
            return False
        if healthy(url, timeout=1.0):
            return True
        time.sleep(0.25)
    return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _terminate(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            if not _alive(pid):
                return
            time.sleep(0.1)


def stop(settings: Settings) -> bool:
    """Stop the server started from this state dir; False when none was running."""
    info = read_pid_file(settings)
    if not info:
        return False
    pid = info["pid"]
    was_running = _alive(pid)
    if was_running:
        _terminate(pid)
        if _alive(pid):
            raise ServerError(f"could not stop Label Studio (pid {pid})")
    settings.pid_file.unlink(missing_ok=True)
    return was_running
