"""Worker deaths under `framing serve`: logged with their cause, and the worker replaced at once.

BentoML runs the service's workers under a circus arbiter (the `bentoml serve` process), which
looks at its workers every 10 s and logs a death only at debug level. So when a worker was
killed (the kernel's OOM killer, a segfault in a native library, `kill -9`) nothing said so,
and the service was down for up to 10 s before the restart even began, 12-13 s in all.

``serve`` runs `bentoml serve` in this process and hooks the arbiter BentoML creates:

- on SIGCHLD, each worker that exited is looked at without reaping it (``waitid`` with
  ``WNOWAIT``: circus still reaps it itself) and one line says which worker died and why
  (exit status, or the signal and what usually sends it);
- the arbiter's own check (reap, respawn) is run right away instead of within 10 s, so the
  outage is the new worker's start-up (~5 s here). A worker that keeps dying is left to the
  arbiter's 10 s rhythm after ``QUICK_RESPAWNS`` quick restarts in ``QUICK_WINDOW_S``, so a
  crash loop does not spin the CPU.

Connections that arrive meanwhile wait in the listening socket's backlog (the arbiter owns the
socket) and are answered by the new worker; requests in flight on the dead worker fail.
With ``FRAMING_WORKERS=2`` the other worker answers at once (bench/RESULTS.md has both, with
what the second worker costs on 2 cores).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from typing import Any

log = logging.getLogger("framing.workers")

QUICK_RESPAWNS = 3
QUICK_WINDOW_S = 60.0

_SIGNAL_CAUSES = {
    signal.SIGKILL: "killed (the kernel's out-of-memory killer, or kill -9)",
    signal.SIGSEGV: "crashed (segmentation fault, a native library; its traceback is above if faulthandler caught it)",
    signal.SIGABRT: "aborted (a native library's assertion)",
    signal.SIGBUS: "crashed (bus error)",
    signal.SIGTERM: "terminated (SIGTERM)",
}


def cause(exit_status: int | None, signal_number: int | None) -> str:
    """What ended a process, in words: its exit status, or the signal and what usually sends it."""
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        return f"{_SIGNAL_CAUSES.get(signal_number, 'killed')} by {name}"
    if exit_status == 0:
        return "exited normally (status 0)"
    return f"exited with status {exit_status} (its error is in the log above)"


class WorkerWatch:
    """Hooks one circus arbiter: logs each worker death with its cause and respawns at once."""

    def __init__(self, arbiter: Any, clock=time.monotonic):
        self.arbiter = arbiter
        self.clock = clock
        self.logged: set[int] = set()
        self.quick: deque[float] = deque()

    def install(self) -> None:
        """Handle SIGCHLD in the arbiter's event loop (main thread, before the loop starts)."""
        from tornado.ioloop import IOLoop

        log.disabled = False  # BentoML's logging config (dictConfig) disables loggers created before it
        # The loop the arbiter will run (tornado's main-thread loop on asyncio). asyncio's handler
        # wakes the loop through its wakeup fd whichever thread the signal lands on; a plain
        # signal.signal handler would wait for the main thread's next wake-up, up to 10 s.
        self.loop = IOLoop.current()
        self.loop.asyncio_loop.add_signal_handler(signal.SIGCHLD, self.check)

    def check(self) -> None:
        """Log every worker that has exited (not yet reaped) and, unless it is crash-looping, respawn now."""
        died = False
        for watcher in list(self.arbiter.iter_watchers()):
            for pid in list(getattr(watcher, "processes", {})):
                info = _peek_exit(pid)
                if info is None or pid in self.logged:
                    continue
                self.logged.add(pid)
                died = True
                status, sig = info
                if getattr(self.arbiter, "_stopping", False):
                    continue  # shutting down: exits are expected
                log.error("worker %s (pid %d) %s; starting a new one", watcher.name, pid, cause(status, sig))
        if died and not getattr(self.arbiter, "_stopping", False):
            now = self.clock()
            while self.quick and now - self.quick[0] > QUICK_WINDOW_S:
                self.quick.popleft()
            if len(self.quick) < QUICK_RESPAWNS:
                self.quick.append(now)
                self.loop.add_callback(self.arbiter.manage_watchers)
            else:
                log.error("workers keep dying (%d restarts in %.0f s): leaving restarts to the arbiter's "
                          "periodic check", len(self.quick), QUICK_WINDOW_S)


def _peek_exit(pid: int) -> tuple[int | None, int | None] | None:
    """(exit status, signal) of child ``pid`` if it has exited, without reaping it; None while it runs."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped (by circus)
        return None
    if info is None:
        return None
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return None, info.si_status
    return info.si_status, None


def serve(bentoml_args: list[str]) -> None:
    """Run `bentoml <bentoml_args>` in this process, with every arbiter it creates watched (``WorkerWatch``).

    BentoML offers no hook into the arbiter it builds, so its factory
    (``bentoml._internal.utils.circus.create_standalone_arbiter``, bentoml 1.4) is wrapped here,
    in this process only; nothing changes in the workers.
    """
    import bentoml._internal.utils.circus as bentoml_circus
    from bentoml_cli.cli import cli

    create = bentoml_circus.create_standalone_arbiter

    def create_watched(*args: Any, **kwargs: Any):
        arbiter = create(*args, **kwargs)
        WorkerWatch(arbiter).install()
        return arbiter

    bentoml_circus.create_standalone_arbiter = create_watched
    cli.main(args=bentoml_args, prog_name="bentoml")
