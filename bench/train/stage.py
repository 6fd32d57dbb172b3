"""Child process for one timed stage: ``python -m bench.train.stage SPEC.json RESULT.json``.

SPEC is {"stage": "ingest" | "dataset" | "train", "workdir": ..., "seed": ..., "train_params": {...}};
paths inside workdir follow bench.train.run's layout. The parent measures the
whole process (wall clock and peak RSS via os.wait4); this child writes the
time spent in the stage's ``run`` call alone (imports excluded) and a few
facts from the stage's summary to RESULT.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(spec_path: str, result_path: str) -> None:
    t_start = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("profile"):  # cProfile the whole stage (slower; for finding bottlenecks, not for timings)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            _run(spec, result_path, t_start)
        finally:
            profiler.disable()
            profiler.dump_stats(spec["profile"])
    else:
        _run(spec, result_path, t_start)


def _run(spec: dict, result_path: str, t_start: float) -> None:
    stage, work, seed = spec["stage"], Path(spec["workdir"]), spec["seed"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline.config import load_params

    params = load_params(spec["params"])
    facts: dict = {}
    if stage == "ingest":
        from pipeline import ingest

        t0 = time.perf_counter()
        summary = ingest.run(work / "docs", work / "passages.jsonl", work / "metrics" / "ingest.json", params.ingest, seed)
        facts = {k: summary[k] for k in ("documents", "passages", "exact_duplicates_merged", "near_duplicate_passages",
                                         "clusters", "dropped")}
    elif stage == "dataset":
        import datasets

        from pipeline import dataset

        datasets.disable_progress_bars()
        t0 = time.perf_counter()
        summary = dataset.run(work / "passages.jsonl", work / "annotations", spec["labels"], work / "dataset",
                              work / "dataset_parquet", work / "metrics" / "dataset.json",
                              work / "dataset_report.json", params.dataset, seed)
        facts = {"examples": summary["examples"], "excluded": summary["excluded"],
                 **{s: summary[s]["passages"] for s in ("train", "validation", "test")}}
    elif stage == "train":
        from pipeline import train

        tp = train.TrainParams.from_mapping(spec["train_params"], "bench train params")
        name = spec["config_name"]
        out = work / f"train_{name}"
        t0 = time.perf_counter()
        summary = train.run(work / "dataset", spec["labels"], out / "model.pkl", out / "cv.json", out / "registry.json",
                            out / "cv_predictions.jsonl", tp, seed, tracking=os.environ["MLFLOW_TRACKING_URI"])
        cv = json.loads((out / "cv.json").read_text())
        facts = {"best": summary["best_candidate"], "candidates": len(cv["candidates"]),
                 "candidate_seconds": summary["train_seconds"],
                 "best_cv_score": next(c["cv"]["score"] for c in cv["candidates"] if c["name"] == summary["best_candidate"]),
                 "best_test_score": summary["candidate_test_score"],
                 "model_bytes": (out / "model.pkl").stat().st_size}
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    t1 = time.perf_counter()
    Path(result_path).write_text(json.dumps({"stage_seconds": t1 - t0, "import_seconds": t0 - t_start,
                                             "self_peak_rss_mib": _rss_mib(), "facts": facts}, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
