"""Token ids of whole texts from cached ids of their space-separated chunks.

The static tables' tokenizers (BERT normaliser and pre-tokeniser, WordPiece) normalise character
by character and always split at a space, so a text's ids are its chunks' ids one after another,
cut to the tokenizer's truncation length. News text repeats its words, so once warm most chunks
are a dict lookup instead of a pass through the tokenizer, which was the largest single cost of
embedding a passage (bench/RESULTS.md). The ids are exactly the tokenizer's
(tests/code/test_inference.py); a tokenizer for which that does not hold is called on whole texts.
"""

from __future__ import annotations

import itertools
import json
from typing import Sequence

import numpy as np

_PIECE = 256  # characters of joined chunks per tokenizer call


def chunk_encoder(tokenizer, size: int = 50_000):
    """A ``ChunkCache`` over ``tokenizer`` when its ids split at spaces, else a plain ``WholeTexts``."""
    return ChunkCache(tokenizer, size) if ChunkCache.supports(tokenizer) else WholeTexts(tokenizer)


class WholeTexts:
    """The tokenizer called on whole texts."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The texts' ids one after another, and how many each text has."""
        rows = [e.ids for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum())), lengths


class ChunkCache:
    """Ids of whole texts from the cached ids of at most ``size`` space-separated chunks.

    When full the cache starts afresh (a new dict, so a caller in another thread keeps its own).
    Chunks not yet cached are encoded a few hundred characters at a time, joined by spaces, and
    their tokens assigned to them by character offset (a third of the cost of one call per chunk).
    """

    def __init__(self, tokenizer, size: int = 50_000):
        self.tokenizer = tokenizer
        self.size = size
        truncation = tokenizer.truncation
        self.max_tokens = truncation["max_length"] if truncation else None
        self._ids: dict[str, tuple[int, ...]] = {}

    @staticmethod
    def supports(tokenizer) -> bool:
        """Whether a text's ids are its space-separated chunks' ids: a BERT normaliser (or none), a
        whitespace or BERT pre-tokeniser, WordPiece, no padding, no added token containing a space."""
        spec = json.loads(tokenizer.to_str())
        padding = spec.get("padding")
        return ((spec.get("normalizer") or {"type": "BertNormalizer"})["type"] == "BertNormalizer"
                and (spec.get("pre_tokenizer") or {}).get("type") in ("BertPreTokenizer", "WhitespaceSplit", "Whitespace")
                and spec["model"]["type"] == "WordPiece"
                and (padding is None or padding.get("strategy") == {"Fixed": 0})
                and not any(" " in t["content"] for t in spec.get("added_tokens") or ()))

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The texts' ids one after another, and how many each text has: what
        ``tokenizer.encode_batch_fast(texts, add_special_tokens=False)`` gives, flattened."""
        cache = self._ids
        chunked = [t.split(" ") for t in texts]
        chunks = list(itertools.chain.from_iterable(chunked))
        per_chunk = list(map(cache.get, chunks))
        if None in per_chunk:  # some chunks are new: encode each distinct one once
            missing = list({c for c, ids in zip(chunks, per_chunk) if ids is None})
            if len(cache) + len(missing) > self.size:
                cache = self._ids = {}
                missing = list(set(chunks))
            # Tuples of ints: the garbage collector stops tracking them, so a full cache does not
            # make every collection in a long-running process walk 50,000 more objects.
            cache.update(zip(missing, map(tuple, self._encode_chunks(missing))))
            per_chunk = list(map(cache.__getitem__, chunks))
        chunk_lengths = np.fromiter(map(len, per_chunk), dtype=np.int64, count=len(per_chunk))
        ids = np.fromiter(itertools.chain.from_iterable(per_chunk), dtype=np.int64, count=int(chunk_lengths.sum()))
        chunk_counts = np.fromiter(map(len, chunked), dtype=np.int64, count=len(chunked))
        ends = np.cumsum(np.concatenate([[0], chunk_lengths]))[np.cumsum(chunk_counts)]
        lengths = np.diff(np.concatenate([[0], ends]))
        if self.max_tokens is not None and len(lengths) and lengths.max() > self.max_tokens:
            # Keep each text's first max_tokens ids, as the tokenizer's truncation does.
            position = np.arange(len(ids)) - np.repeat(ends - lengths, lengths)
            ids = ids[position < self.max_tokens]
            lengths = np.minimum(lengths, self.max_tokens)
        return ids, lengths

    def _encode_chunks(self, chunks: list[str]) -> list[list[int]]:
        # Joined by spaces into pieces of at most _PIECE characters, encoded as one batch; each
        # token goes to the chunk its character offset falls in. A piece that hits the truncation
        # length (more tokens than characters: not seen, but possible) is encoded chunk by chunk.
        pieces, piece, size = [], [], 0
        for chunk in chunks:
            if piece and size + len(chunk) + 1 > _PIECE:
                pieces.append(piece)
                piece, size = [], 0
            piece.append(chunk)
            size += len(chunk) + 1
        pieces.append(piece)
        out: list[list[int]] = []
        for piece, enc in zip(pieces, self.tokenizer.encode_batch([" ".join(p) for p in pieces], add_special_tokens=False)):
            ids = enc.ids
            if self.max_tokens is not None and len(ids) >= self.max_tokens:
                out += [e.ids for e in self.tokenizer.encode_batch_fast(piece, add_special_tokens=False)]
                continue
            starts = np.cumsum([0] + [len(c) + 1 for c in piece[:-1]])
            owner = np.searchsorted(starts, [start for start, _ in enc.offsets], side="right") - 1
            bounds = np.searchsorted(owner, np.arange(len(piece) + 1)).tolist()
            out += [ids[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        return out
