"""The CPU code-path pins of the committed stages (pipeline/numerics.py), checked in fresh processes:
the libraries read them only when they load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.numerics import CODE_PATH_ENV, code_path_env

PROBE = """
import json, sys
from pipeline.cli import main  # what the `framing` entry point imports before main() runs
loaded_early = "numpy" in sys.modules
from pipeline.numerics import pin_code_paths
pins = pin_code_paths()
import numpy, scipy.linalg  # scipy brings its own OpenBLAS
from threadpoolctl import threadpool_info
print(json.dumps({"loaded_early": loaded_early, "pins": pins,
                  "found": numpy.__config__.CONFIG["SIMD Extensions"]["found"],
                  "openblas": [i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"]}))
"""


def _probe(env: dict[str, str]) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in CODE_PATH_ENV}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cli_module_loads_no_numpy_so_a_command_can_still_be_pinned():
    assert _probe({})["loaded_early"] is False


@pytest.mark.skipif(not code_path_env(), reason="no AVX2 x86-64 CPU: nothing to pin (the pins are x86-64 only)")
def test_pinned_process_runs_the_avx2_kernels_of_numpy_and_both_openblas_builds():
    seen = _probe({})
    assert seen["pins"] == CODE_PATH_ENV
    assert not {"X86_V4", "AVX512_ICL", "AVX512_SPR"} & set(seen["found"])
    assert seen["openblas"] and set(seen["openblas"]) == {"Haswell"}


def test_a_value_the_user_set_is_kept():
    seen = _probe({"OPENBLAS_CORETYPE": "Sandybridge"})
    if code_path_env():
        assert seen["pins"]["OPENBLAS_CORETYPE"] == "Sandybridge"
        assert set(seen["openblas"]) == {"Sandybridge"}
