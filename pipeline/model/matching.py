"""Scanning a batch's words, and matching cue phrases in it: kernels of the forward pass that the
training-time ``CueFeaturizer`` calls too (one implementation for both).

``match_cues`` finds exactly what trying every cue at every word would
(tests/code/test_forward_kernels.py), looking only at the words that start some cue, and at a
negation window only when a negator is in it.
"""

from __future__ import annotations

import functools
import re
from typing import Sequence

import numpy as np
import scipy.sparse as sp

WORD = re.compile(r"\w+")
_WORD_CHAR = re.compile(r"\w")


class Words:
    """A batch's lower-cased texts and their ``WORD`` runs, found once for every featuriser that reads them."""

    __slots__ = ("lower", "words")

    def __init__(self, texts: Sequence[str]):
        self.lower = [t.lower() for t in texts]
        self.words = [WORD.findall(t) for t in self.lower]


def match_cues(texts: Sequence[str], patterns: Sequence[re.Pattern], by_first_word: dict[str, list[int]],
               anywhere: Sequence[int], negation: re.Pattern | None, words: Words | None = None) -> sp.csr_matrix:
    """(n, n_cues) 0/1 CSR: which cue patterns occur in each text, outside a negator's reach.

    A cue is tried only where its first word occurs (``by_first_word``); cues that do not start
    with a word character are searched everywhere (``anywhere``). A cue found at ``start`` counts
    only if ``negation`` does not match the 80 characters before it (same clause).
    """
    hint = _negator_hint(negation) if negation is not None else None

    def counts(low: str, start: int) -> bool:
        if negation is None:
            return True
        lo = max(0, start - 80)
        if hint is not None and hint.search(low, lo, start) is None:
            return True  # no negator in reach: the full pattern cannot match either
        return negation.search(low, lo, start) is None

    first_words = by_first_word.keys()
    words = words or Words(texts)
    rows, cols = [], []
    n = 0
    for i, low in enumerate(words.lower):
        n = i + 1
        found = {j for j in anywhere for m in patterns[j].finditer(low) if counts(low, m.start())}
        # The words of the text that start a cue (one C-level findall and a set intersection),
        # then every place each of those stands as a whole word.
        for first in first_words & set(words.words[i]):
            for word in _word_ending(first).finditer(low):
                start = word.start()
                if start and _WORD_CHAR.match(low, start - 1):
                    continue  # the end of a longer word
                for j in by_first_word[first]:
                    if j not in found and patterns[j].match(low, start) and counts(low, start):
                        found.add(j)
        rows += [i] * len(found)
        cols += sorted(found)
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(n, len(patterns)))


_NEGATION_HEAD, _NEGATION_TAIL = r"(?<![\w'])(?:", r")(?! +only\b"


@functools.lru_cache(maxsize=64)
def _negator_hint(negation: re.Pattern) -> re.Pattern | None:
    """A cheap necessary condition for ``negation`` (``CueFeaturizer``'s pattern): one of its
    negator phrases starting a word, or "n't", somewhere in the window. Most windows have none,
    and the full pattern, tried at every position of the window, is the dearer search. None for
    a pattern of another shape."""
    pattern = negation.pattern
    if not pattern.startswith(_NEGATION_HEAD) or _NEGATION_TAIL not in pattern:
        return None
    alternatives = pattern[len(_NEGATION_HEAD):pattern.index(_NEGATION_TAIL)]
    if alternatives.endswith(r"|[\w']*n't"):
        return re.compile(_NEGATION_HEAD + alternatives[:-len(r"|[\w']*n't")] + ")|n't")
    return re.compile(_NEGATION_HEAD + alternatives + ")")


@functools.lru_cache(maxsize=4096)
def _word_ending(word: str) -> re.Pattern:
    """``word`` not followed by a word character (a literal first: the fast search of ``re``)."""
    return re.compile(r"%s(?!\w)" % re.escape(word))
