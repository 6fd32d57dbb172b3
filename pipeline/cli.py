"""`framing` command line: one subcommand per pipeline stage and tool.

Entry points set up logging; modules have no side effects on import.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

# subcommand -> (module with a main(argv), one-line help)
COMMANDS = {
    "ingest": ("pipeline.ingest", "documents → cleaned, de-duplicated passages (DVC stage)"),
    "labels": ("pipeline.labels", "render the Label Studio config and guidelines from configs/labels.yaml (DVC stage)"),
    "dataset": ("pipeline.dataset", "passages + annotations → Hugging Face DatasetDict with grouped splits (DVC stage)"),
    "distill": ("pipeline.distill", "distill all-MiniLM-L6-v2 into a static embedding table with model2vec, in .venv-distill (DVC stage)"),
    "train": ("pipeline.train", "train and compare candidates with grouped CV, track in MLflow, register the champion (DVC stage)"),
    "evaluate": ("pipeline.evaluate", "test-split and CV metrics, plots and the model card (DVC stage)"),
    "package": ("pipeline.package", "put the MLflow champion into the BentoML store and build the Bento (DVC stage)"),
    "serve": ("pipeline.serve", "serve the packaged model over HTTP with BentoML"),
    "labelstudio": ("pipeline.labelstudio.cli", "local Label Studio: install|start|stop|status; push passages with pre-annotations; pull annotations and agreement"),
    "predict": ("pipeline.predict", "predict frames, stance, scores and evidence for texts or a JSONL file"),
    "score": ("pipeline.score", "score a JSONL/Parquet archive into a Parquet dataset (local processes or Spark)"),
    "models": ("pipeline.registry", "list registered model versions, aliases and their metrics"),
    "report": ("pipeline.report", "static HTML report of predictions: frames and stance over time, by outlet, evidence, examples"),
    "monitor": ("pipeline.monitor", "static HTML drift report of the serving prediction log; exit 1 when a label drifted"),
}

# The stages whose outputs dvc.lock records bit for bit: one CPU code path (pipeline/numerics.py).
# distill pins its own process (pipeline/distill.py).
PINNED_COMMANDS = ("train", "evaluate")


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: framing <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `framing <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"framing: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=os.environ.get("FRAMING_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "mlflow.store.db.utils"):  # schema migrations of a fresh sqlite store
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if name in PINNED_COMMANDS:
        from pipeline.numerics import pin_code_paths

        pin_code_paths()
    from pipeline.errors import InputError

    module = importlib.import_module(COMMANDS[name][0])
    try:
        module.main(rest)
    except InputError as exc:
        print(f"framing {name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"framing {name}: interrupted; no partial outputs were written", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
