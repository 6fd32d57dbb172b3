"""Synthetic predictions in the three shapes `framing report` and `framing monitor` read, with known
structure (rates per label, dates, outlets), written as the real tools write them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

OUTLETS = {"wire-a": "wire", "wire-b": "wire", "state-ru": "russian_state", "oped-us": "op_ed", "tank-1": "think_tank"}
PHRASES = {"isolated_pariah": ["pariah", "isolated", "sanctions"], "transactional": ["shells", "in exchange", "oil"],
           "strategic_partnership": ["alliance", "treaty", "partnership"]}


def prediction(rng: np.random.Generator, frame_rates: Mapping[str, float], stance_rates: Mapping[str, float],
               threshold: float = 0.5) -> dict:
    """One model output (`FramingModel.predict` shape): each frame given with its rate, scores consistent."""
    frames, decided = {}, []
    for k, rate in frame_rates.items():
        given = rng.random() < rate
        p = float(rng.uniform(threshold, 1.0) if given else rng.uniform(0.0, threshold - 1e-3))
        frames[k] = round(p, 4)
        if given:
            decided.append(k)
    names = list(stance_rates)
    stance = names[int(rng.choice(len(names), p=np.asarray(list(stance_rates.values())) / sum(stance_rates.values())))]
    raw = rng.dirichlet(np.ones(len(names)))
    raw[names.index(stance)] += 1.0
    scores = {s: round(float(v / raw.sum()), 4) for s, v in zip(names, raw)}
    evidence = {k: list(rng.choice(PHRASES.get(k, [k]), size=2, replace=False)) for k in decided}
    return {"frames": frames, "decided_frames": decided, "stance": stance, "stance_scores": scores, "evidence": evidence}


def passages(n: int, seed: int, frame_names: Sequence[str], stance_names: Sequence[str],
             start: str = "2023-01-01", days: int = 540, rising: str | None = None) -> list[dict]:
    """`framing predict --file` lines with metadata; ``rising``'s rate climbs from 0.1 to 0.8 over the span."""
    rng = np.random.default_rng(seed)
    first = datetime.fromisoformat(start)
    out = []
    for i in range(n):
        t = i / max(n - 1, 1)
        rates = {k: (0.1 + 0.7 * t if k == rising else 0.3) for k in frame_names}
        outlet = list(OUTLETS)[i % len(OUTLETS)]
        date = first + timedelta(days=int(t * days))
        text = (f"Passage {i} from {outlet}: Moscow and Pyongyang, isolated by sanctions, trade shells "
                f"in exchange for oil and sign a treaty of partnership.")
        out.append({"id": f"p{i:05d}", "text": text, "date": date.strftime("%Y-%m-%d"), "year": date.year,
                    "outlet": outlet, "outlet_type": OUTLETS[outlet], "event": "synthetic",
                    **prediction(rng, rates, {s: 1.0 for s in stance_names})})
    return out


def as_score_rows(records: Sequence[dict], model_name: str = "linear_mix[C=30.0]", version: str = "7") -> list[dict]:
    """The same predictions as `framing score` writes them (flat columns, evidence as a JSON string)."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k not in ("frames", "stance_scores", "evidence")}
        row.update({f"frame_{k}": p for k, p in r["frames"].items()})
        row.update({f"stance_{k}": p for k, p in r["stance_scores"].items()})
        row.update({"evidence": json.dumps(r["evidence"]), "model_name": model_name, "model_version": version})
        rows.append(row)
    return rows


def log_lines(outputs: Sequence[dict], texts: Sequence[str], start: datetime | None = None, step_s: float = 30.0,
              model: Mapping | None = None) -> list[dict]:
    """Serving prediction-log lines (serving/service.py PredictionLog) for model ``outputs`` of ``texts``."""
    start = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    model = dict(model or {"name": "linear_mix[C=30.0]", "tag": "framing-classifier:abc", "version": "7"})
    return [{"time": (start + timedelta(seconds=i * step_s)).isoformat(), "model": model,
             "text_sha256": hashlib.sha256(t.encode()).hexdigest()[:16], "chars": len(t), **o}
            for i, (o, t) in enumerate(zip(outputs, texts))]


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
