"""Active-learning order of the passages to annotate.

Least confident first: a passage's *uncertainty* is the mean normalised entropy of the
model's decisions on it (one binary entropy per frame, one entropy over the stance
classes), so 1.0 is a coin toss everywhere and 0.0 is certain; the prediction ``score``
sent to Label Studio is the confidence ``1 - uncertainty``.

With a little diversity: near-identical passages share a ``cluster_id`` and would have
near-identical uncertainty, so a greedy pass lowers a passage's priority by
``cluster_penalty`` for every passage of its cluster already queued and never puts two
passages of one cluster back to back while another cluster is waiting. Without a model
every passage is equally uncertain and the order is the passages' own, clusters spread.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Mapping, Sequence

CLUSTER_PENALTY = 0.5  # an uncertainty of 0..1, so a second member of a cluster waits behind most singletons


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


def order(clusters: Sequence[str], uncertainties: Sequence[float] | None = None,
          cluster_penalty: float = CLUSTER_PENALTY) -> list[int]:
    """Indices of the items in queue order (most uncertain first, clusters spread)."""
    n = len(clusters)
    u = list(uncertainties) if uncertainties is not None else [0.0] * n
    if len(u) != n:
        raise ValueError(f"order: {n} clusters but {len(u)} uncertainties")
    remaining = list(range(n))
    picked: Counter = Counter()
    queue: list[int] = []
    last = None
    while remaining:
        only_last = all(clusters[j] == last for j in remaining)

        def key(i: int):  # higher is better; ties keep input order
            return (only_last or clusters[i] != last, u[i] - cluster_penalty * picked[clusters[i]], -i)

        best = max(remaining, key=key)
        remaining.remove(best)
        queue.append(best)
        picked[clusters[best]] += 1
        last = clusters[best]
    return queue


def priorities(clusters: Sequence[str], uncertainties: Sequence[float] | None = None,
               cluster_penalty: float = CLUSTER_PENALTY) -> list[int]:
    """Queue position per item (1 = label first), in input order."""
    ranks = [0] * len(clusters)
    for position, i in enumerate(order(clusters, uncertainties, cluster_penalty), 1):
        ranks[i] = position
    return ranks
