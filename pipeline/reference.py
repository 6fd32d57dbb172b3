"""The champion's training data as the report and the monitor compare against it.

The train stage refits the champion on train + validation (``TRAINING_SPLITS``), so that is what it
learnt from: its outlets, outlet types and years (for the report's coverage note), its label
prevalence and text lengths (for the monitor's drift statistics). Read from the dataset stage's
parquet copy (``data/dataset_parquet/<split>.parquet``), whose ``frames``/``stance`` columns are
codes in the label schema's order (``pipeline.dataset.features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.errors import InputError

TRAINING_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Reference:
    """Label prevalence, text lengths and coverage of the training passages."""

    n: int
    frame_counts: dict[str, int]     # passages with each frame
    stance_counts: dict[str, int]    # passages of each stance (off-topic passages have none)
    lengths: np.ndarray              # characters per passage
    outlets: frozenset[str]
    outlet_types: frozenset[str]
    years: tuple[int, int] | None    # first and last known year
    source: str

    def frame_rate(self, key: str) -> float:
        return self.frame_counts[key] / self.n

    def stance_rate(self, key: str) -> float:
        """The share of ``key`` among the passages with a stance (the on-topic ones)."""
        return self.stance_counts[key] / max(1, sum(self.stance_counts.values()))


def load_reference(parquet_dir: str | Path, frame_names: Sequence[str], stance_names: Sequence[str],
                   splits: Sequence[str] = TRAINING_SPLITS) -> Reference:
    """The training split(s) under ``parquet_dir``; InputError when none is there or a column is missing."""
    parquet_dir = Path(parquet_dir)
    files = [parquet_dir / f"{s}.parquet" for s in splits if (parquet_dir / f"{s}.parquet").is_file()]
    if not files:
        raise InputError(f"{parquet_dir}: no {'/'.join(splits)}.parquet here (run the dataset stage: dvc repro dataset)")
    try:
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    except Exception as exc:  # pyarrow's errors for a damaged file
        raise InputError(f"{parquet_dir}: cannot read the training parquet files ({exc})") from None
    missing = [c for c in ("text", "frames", "stance") if c not in frame]
    if missing:
        raise InputError(f"{parquet_dir}: training data lacks column(s) {missing}")
    if frame.empty:
        raise InputError(f"{parquet_dir}: the training splits are empty")
    codes = [np.asarray(v, dtype=int) for v in frame["frames"]]
    stance = frame["stance"].to_numpy(dtype=int)
    if any(c.size and (c.min() < 0 or c.max() >= len(frame_names)) for c in codes) or \
            stance.min() < -1 or stance.max() >= len(stance_names):  # -1: off-topic, no stance
        raise InputError(f"{parquet_dir}: label codes outside the label schema's {len(frame_names)} frames / "
                         f"{len(stance_names)} stances; rebuild the dataset (dvc repro dataset)")
    frame_counts = {k: int(sum(j in c for c in codes)) for j, k in enumerate(frame_names)}
    stance_counts = {k: int((stance == j).sum()) for j, k in enumerate(stance_names)}
    years = pd.to_numeric(frame["year"], errors="coerce") if "year" in frame else pd.Series(dtype=float)
    years = years[years > 0]
    return Reference(
        n=len(frame), frame_counts=frame_counts, stance_counts=stance_counts,
        lengths=frame["text"].str.len().to_numpy(dtype=float),
        outlets=frozenset(frame["outlet"].dropna().astype(str)) if "outlet" in frame else frozenset(),
        outlet_types=frozenset(frame["outlet_type"].dropna().astype(str)) if "outlet_type" in frame else frozenset(),
        years=(int(years.min()), int(years.max())) if len(years) else None,
        source=", ".join(str(f) for f in files))
