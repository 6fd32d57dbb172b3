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

from collections import Counter
from typing import Sequence


CLUSTER_PENALTY = 0.5  # an uncertainty of 0..1, so a second member of a cluster waits behind most singletons


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
