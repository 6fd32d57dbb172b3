"""One CPU code path for the stages whose outputs dvc.lock records, on every x86-64 machine with AVX2.

OpenBLAS and NumPy pick their kernels for the CPU they load on: on an AVX-512 machine, OpenBLAS's
SkylakeX kernels and NumPy's X86_V4 loops sum in another order than the Haswell / X86_V3 ones of an
AVX2 machine. Measured 2026-12-02: the same `framing train` on the same data gave another model
on an AMD AVX-512 machine than the committed one from an AMD AVX2 machine (the CV chose C=10
instead of C=30 and a threshold moved; test frames / stance 0.744 / 0.751 became 0.742 / 0.744).
With these pins the AVX-512 machine gave the committed cv.json and model.pkl byte for byte.

The libraries read these variables when they load, so `framing` sets them before it imports the
command's module (``pin_code_paths``); a process that has already imported NumPy cannot be pinned.
Serving and batch scoring are not pinned: their speed is worth more than the last bit of a score.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

log = logging.getLogger(__name__)

CODE_PATH_ENV = {
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS: the AVX2 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's own loops: X86_V3 (AVX2) at most
}


def _has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        return any(line.startswith("flags") and " avx2" in line for line in cpuinfo.open(encoding="utf-8"))
    except OSError:
        return False


def code_path_env() -> dict[str, str]:
    """The pins for this machine: ``CODE_PATH_ENV`` on x86-64 with AVX2, else nothing (other CPUs keep
    their own kernels: a Haswell pin would crash a CPU without AVX2, and ARM has no such kernels)."""
    return dict(CODE_PATH_ENV) if platform.machine() in ("x86_64", "AMD64") and _has_avx2() else {}


def pin_code_paths() -> dict[str, str]:
    """Set the pins in ``os.environ`` where the user has not set them; returns what is now in effect.

    Must run before NumPy is imported; warns (and changes nothing) when it already is.
    """
    pins = code_path_env()
    if "numpy" in sys.modules:
        log.warning("numerics: numpy is already loaded, so its kernels cannot be pinned; results may differ in the "
                    "last bits from dvc.lock's")
        return {}
    for key, value in pins.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in pins}
