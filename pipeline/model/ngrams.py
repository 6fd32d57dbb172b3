"""Word n-gram counts of a fitted vocabulary, computed a batch at a time with integer keys.

scikit-learn's ``CountVectorizer`` builds every n-gram of a text as a string and looks each up
in its vocabulary: for word bigrams that is one ``" ".join`` and one dict lookup per position,
most of the TF-IDF time at predict. ``WordNgramIndex`` looks up each *token* once instead, and
finds the n-grams by integer arithmetic on the token ids of the whole batch (NumPy). The counts
are exactly ``CountVectorizer``'s (integers, sorted column indices per row), so the TF-IDF values
built on them stay bit-identical (tests/code/test_inference.py).

A token not in the index cannot be part of any vocabulary n-gram, so it needs no id.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

_KEY_LIMIT = 2**62  # keys are int64; a vocabulary too large for this falls back to strings


class WordNgramIndex:
    """The vocabulary's word n-grams as int64 keys over its tokens' ids.

    An n-gram of token ids (t1 … tn) has the key Σ (t_k + 1)·B^(n-k), B = number of tokens + 1:
    distinct for distinct n-grams of any length (no digit is 0).
    """

    def __init__(self, token_ids: dict[str, int], keys: np.ndarray, columns: np.ndarray,
                 ngram_range: tuple[int, int], n_columns: int):
        self.token_ids = token_ids
        self.base = len(token_ids) + 1
        self.keys = keys  # sorted
        self.columns = columns  # the vocabulary column of each key
        self.ngram_range = ngram_range
        self.n_columns = n_columns

    @classmethod
    def build(cls, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> "WordNgramIndex | None":
        """The index of a fitted vocabulary, or None when its keys would not fit in an int64."""
        token_ids: dict[str, int] = {}
        entries = [([token_ids.setdefault(tok, len(token_ids)) for tok in ngram.split(" ")], column)
                   for ngram, column in vocabulary.items()]
        base = len(token_ids) + 1
        if base ** ngram_range[1] >= _KEY_LIMIT:
            return None
        keys = np.fromiter((_key(ids, base) for ids, _ in entries), dtype=np.int64, count=len(entries))
        order = np.argsort(keys, kind="stable")
        columns = np.fromiter((c for _, c in entries), dtype=np.int64, count=len(entries))
        return cls(token_ids, keys[order], columns[order], ngram_range, len(vocabulary))

    def counts(self, token_lists: Sequence[Sequence[str]], min_length: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, counts) of the CSR count matrix of these tokenised texts: one row per
        text, columns sorted within a row, only n-grams of the vocabulary. Tokens shorter than
        ``min_length`` characters are left out before n-grams are formed."""
        n = len(token_lists)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=n)
        total = int(lengths.sum())
        ids = np.fromiter(map(self.token_ids.get, itertools.chain.from_iterable(token_lists), itertools.repeat(-1)),
                          dtype=np.int64, count=total)
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        if min_length > 1:
            long_enough = np.fromiter(map(len, itertools.chain.from_iterable(token_lists)), dtype=np.int64,
                                      count=total) >= min_length
            ids, row = ids[long_enough], row[long_enough]
            lengths = np.bincount(row, minlength=n)
            total = len(ids)
        left = np.repeat(lengths, lengths) - (np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        codes = []
        min_n, max_n = self.ngram_range
        for size in range(min_n, max_n + 1 if len(self.keys) else min_n):
            start = np.flatnonzero(left >= size)  # an n-gram of this size starts here, inside its text
            key = np.zeros(len(start), dtype=np.int64)
            known = np.ones(len(start), dtype=bool)
            for k in range(size):
                t = ids[start + k]
                known &= t >= 0
                key = key * self.base + t + 1
            start, key = start[known], key[known]
            order = np.argsort(key)  # sorted queries: searchsorted then walks the keys forwards
            start, key = start[order], key[order]
            at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            hit = self.keys[at] == key
            codes.append(row[start[hit]] * self.n_columns + self.columns[at[hit]])
        code, counts = np.unique(np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64), return_counts=True)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(code // self.n_columns, minlength=n), out=indptr[1:])
        return indptr, code % self.n_columns, counts


def _key(ids: Sequence[int], base: int) -> int:
    key = 0
    for t in ids:
        key = key * base + t + 1
    return key
