"""Near-duplicate detection: word-shingle MinHash with LSH banding.

Exact duplicates are merged by passage id before this runs; here passages whose
estimated Jaccard similarity reaches a threshold are put in one cluster so that
dataset splits can keep them together.
"""

from __future__ import annotations

import zlib

import numpy as np

from pipeline.unionfind import UnionFind

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)


class MinHasher:
    """Fixed random permutations (from ``seed``), so signatures are reproducible."""

    def __init__(self, num_perm: int = 64, shingle_words: int = 3, seed: int = 1):
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, (1 << 32) - 1, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, (1 << 32) - 1, size=num_perm, dtype=np.uint64)

    def shingles(self, text: str) -> np.ndarray:
        words = text.lower().split()
        k = self.shingle_words
        grams = [" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))]
        return np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature (uint32[num_perm]) of the text's word shingles."""
        x = self.shingles(text)
        hashed = ((np.outer(self._a, x) + self._b[:, None]) % _MERSENNE) & _MAX32
        return hashed.min(axis=1).astype(np.uint32)


def cluster(signatures: np.ndarray, bands: int, threshold: float) -> list[int]:
    """Cluster index per signature: connected components of near-duplicate pairs.

    Candidate pairs share at least one LSH band; a pair is kept when the share of
    equal signature positions (the Jaccard estimate) reaches ``threshold``.
    Cluster numbers are the index of each component's first member.
    """
    n = len(signatures)
    sets: UnionFind[int] = UnionFind()
    if n:
        sig = np.asarray(signatures)
        rows = sig.shape[1] // bands
        for band in range(bands):
            buckets: dict[bytes, list[int]] = {}
            for i, key in enumerate(sig[:, band * rows : (band + 1) * rows]):
                buckets.setdefault(key.tobytes(), []).append(i)
            for members in buckets.values():
                head = members[0]
                for other in members[1:]:
                    if sets.find(head) != sets.find(other) and np.mean(sig[head] == sig[other]) >= threshold:
                        sets.union(head, other)
    return [sets.find(i) for i in range(n)]
