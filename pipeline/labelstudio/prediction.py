"""Model outputs as Label Studio sees them: control names, pre-annotations, confidence.

The one module the prediction service's ML backend and `framing labelstudio push` share, so a
pushed pre-annotation and a live one are the same. Standard library only: it travels in the Bento.

A passage's *uncertainty* is the mean normalised entropy of the model's decisions on it (one
binary entropy per frame, one entropy over the stance classes): 1.0 is a coin toss everywhere,
0.0 is certain. The prediction ``score`` is the confidence ``1 - uncertainty``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# Control names of the labeling config (labels/label_config.xml), shared with the annotation reader.
TEXT_NAME, FRAMES_NAME, STANCE_NAME, FLAGS_NAME = "text", "frames", "stance", "flags"


def model_version_label(model_name: str, version: Any) -> str:
    """The ``model_version`` of a registered model's predictions: ``framing-classifier@v3``, the same
    whether `framing labelstudio push` attaches them or the served ML backend returns them."""
    return f"{model_name}@v{version}"


class LabelMismatch(ValueError):
    """A model output names a label the model's label set does not have."""


@dataclass(frozen=True)
class Labels:
    """The label keys a model predicts, in order, and the display names Label Studio shows."""

    frame_names: tuple[str, ...]
    stance_names: tuple[str, ...]
    display: Mapping[str, str]

    @classmethod
    def of_model(cls, model) -> "Labels":
        return cls(tuple(model.frame_names), tuple(model.stance_names), dict(model.display_names))


def _entropy(probs: Sequence[float]) -> float:
    """Entropy normalised to [0, 1] by log(len(probs)); probabilities are renormalised."""
    clean = [max(float(p), 0.0) for p in probs]
    total = sum(clean)
    if len(clean) < 2 or total <= 0:
        return 0.0
    h = -sum(p / total * math.log(p / total) for p in clean if p > 0)
    return h / math.log(len(clean))


def uncertainty(output: Mapping) -> float:
    """Mean normalised entropy of one model output ({"frames": {label: p}, "stance_scores": {label: p}})."""
    parts = [_entropy((p, 1.0 - p)) for p in (output.get("frames") or {}).values()]
    stance = output.get("stance_scores") or {}
    if stance:
        parts.append(_entropy(list(stance.values())))
    return sum(parts) / len(parts) if parts else 1.0


def confidence(output: Mapping) -> float:
    """The prediction score: 1 - uncertainty, in [0, 1]."""
    return round(1.0 - uncertainty(output), 6)


def prediction(output: Mapping, labels: Labels, model_version: str) -> dict:
    """A Label Studio prediction from one model output: decided frames in one choices result, the
    stance in another, each with the model's probability as its ``score``; the whole prediction's
    ``score`` is the output's confidence."""
    frame_probs = output.get("frames") or {}
    decided = output.get("decided_frames")
    if decided is None:
        raise LabelMismatch("model output has no 'decided_frames'")
    unknown = sorted(({*frame_probs, *decided} - set(labels.frame_names))
                     | ({output.get("stance"), *(output.get("stance_scores") or {})} - set(labels.stance_names)))
    if unknown:
        raise LabelMismatch(f"model labels {unknown} are not among {[*labels.frame_names, *labels.stance_names]}")
    results = []
    frames = [f for f in labels.frame_names if f in set(decided)]
    if frames:
        results.append({"from_name": FRAMES_NAME, "to_name": TEXT_NAME, "type": "choices",
                        "value": {"choices": [labels.display[f] for f in frames]},
                        "score": round(min(float(frame_probs.get(f, 0.0)) for f in frames), 6)})
    stance = output.get("stance")
    if stance is not None:
        results.append({"from_name": STANCE_NAME, "to_name": TEXT_NAME, "type": "choices",
                        "value": {"choices": [labels.display[stance]]},
                        "score": round(float((output.get("stance_scores") or {}).get(stance, 0.0)), 6)})
    for i, result in enumerate(results):
        result["id"] = f"pred-{result['from_name']}-{i}"
    return {"model_version": model_version, "score": confidence(output), "result": results}
