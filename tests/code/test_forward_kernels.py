"""The forward pass's fast kernels give exactly what the slow, obvious computation gives.

Each kernel here replaced a simpler one for speed (bench/RESULTS.md, issue 17): the tokenizer's
chunk cache, integer-keyed word n-gram counts, the cue matcher's word index and the batched
evidence ranking. Each test holds the fast kernel to the obvious computation on the shipped
passages and on text built to break it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from tokenizers import Tokenizer

from pipeline.model import CueFeaturizer
from pipeline.model.matching import WORD, Words, match_cues
from pipeline.model.ngrams import WordNgramIndex
from pipeline.model.tokens import ChunkCache, WholeTexts, chunk_encoder
from pipeline.schema import load_label_schema
from pipeline.textnorm import model_text
from tests.fixtures_train import LABELS, build_records

SCHEMA = load_label_schema(LABELS)
ODD = ["", " ", "x", "  two  spaces ", "tab\tand\nnew line\r\n", "x\x1cy z", "中文字符 和 English alliance",
       "café naïve İstanbul", "a\u0301 \u0301b", "treaty" * 700, "word " * 900, "[CLS] [MASK]x [UNK]",
       "not a strategic partnership, no alliance, isn't a deal", "Стратегическое партнёрство Москвы",
       "the pariah pariahs pariah's non-pariah pariah_state", "arms-for-oil deal deal deal DEAL"]


def _fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = ([chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000] + [chr(c) for c in range(0x4E00, 0x4E40)]
                + ["\U0001F600", "\u0301", "\u200b", "\ufeff"] + [" "] * 80 + list("abcdefghij") * 12)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 700))) for _ in range(n)]


@pytest.fixture(scope="module")
def texts(passages) -> list[str]:
    return [model_text(p["text"]) for p in passages] + ODD + _fuzz(150, seed=0)


@pytest.fixture(scope="module")
def wordpiece(static_embedding) -> Tokenizer:
    return Tokenizer.from_file(str(static_embedding / "tokenizer.json"))


# -- token ids from the chunk cache

@pytest.mark.parametrize("truncate", [None, 20, 3])  # 3: pieces hit the limit and are re-encoded chunk by chunk
@pytest.mark.parametrize("size", [40, 50_000])  # 40: the cache starts afresh within every batch
def test_chunk_cache_gives_exactly_the_tokenizers_ids(wordpiece, texts, truncate, size):
    tok = Tokenizer.from_str(wordpiece.to_str())
    tok.no_truncation() if truncate is None else tok.enable_truncation(truncate)
    assert ChunkCache.supports(tok)
    cache, whole = ChunkCache(tok, size=size), WholeTexts(tok)
    for batch in (texts[:300], texts[250:], ODD, [], ["solo"], texts[:300]):  # the last: from a warm cache
        ids, lengths = cache.encode(batch)
        want_ids, want_lengths = whole.encode(batch)
        np.testing.assert_array_equal(lengths, want_lengths)
        np.testing.assert_array_equal(ids, want_ids)


def test_a_tokenizer_that_may_not_split_at_spaces_is_called_on_whole_texts(wordpiece, static_dir):
    word_level = Tokenizer.from_file(str(static_dir / "tokenizer.json"))  # WordLevel, not WordPiece
    assert isinstance(chunk_encoder(word_level), WholeTexts)
    spaced = Tokenizer.from_str(wordpiece.to_str())
    spaced.add_tokens(["north korea"])  # an added token that spans a space
    assert isinstance(chunk_encoder(spaced), WholeTexts)
    assert isinstance(chunk_encoder(wordpiece), ChunkCache)


# -- word n-gram counts

@pytest.mark.parametrize("ngram_range, max_features", [((1, 1), None), ((1, 2), None), ((1, 2), 60), ((2, 3), 80)])
def test_word_ngram_counts_are_count_vectorizers(texts, ngram_range, max_features):
    train = [r["text"] for r in build_records(48, seed=3)] + texts[:200]
    cv = CountVectorizer(ngram_range=ngram_range, max_features=max_features).fit(train)
    index = WordNgramIndex.build(cv.vocabulary_, ngram_range)
    want = cv.transform(texts)
    from_tokens = index.counts([cv.build_tokenizer()(t.lower()) for t in texts])
    from_words = index.counts(Words(texts).words, min_length=2)  # the WORD runs shared with the cue matcher
    for indptr, indices, counts in (from_tokens, from_words):
        np.testing.assert_array_equal(indptr, want.indptr)
        np.testing.assert_array_equal(indices, want.indices)
        np.testing.assert_array_equal(counts, want.data)
    assert want.nnz > 1000  # the vocabulary really matches the texts


# -- cue matching

def _match_every_word(texts, f: CueFeaturizer) -> np.ndarray:
    """The obvious matcher: try each cue at every word its first word equals, negation as in match_cues."""
    out = np.zeros((len(texts), len(f.patterns_)))
    for i, text in enumerate(texts):
        low = text.lower()
        for j, p in enumerate(f.patterns_):
            starts = [m.start() for m in p.finditer(low)] if j in f.anywhere_ else \
                [w.start() for w in WORD.finditer(low) if j in f.by_first_word_.get(w.group(), ()) and p.match(low, w.start())]
            out[i, j] = any(f.negation_ is None or f.negation_.search(low, max(0, s - 80), s) is None for s in starts)
    return out


def test_cue_matching_is_trying_every_cue_at_every_word(texts, passages):
    texts = texts[:len(passages)][::2] + texts[len(passages):]  # the obvious matcher is slow: half the passages
    cues = sorted({c for label in (*SCHEMA.frames, *SCHEMA.stance) for c in label.cues})
    f = CueFeaturizer(cues=cues, negators=SCHEMA.negators).fit()
    want = _match_every_word(texts, f)
    assert (f.transform(texts).toarray() == want).all()
    assert (match_cues(texts, f.patterns_, f.by_first_word_, f.anywhere_, f.negation_, Words(texts)).toarray() == want).all()
    assert want.sum() > 100  # the texts really contain cues


# -- evidence

def test_evidence_is_each_decided_frames_top_features_by_contribution(champion, passages):
    """predict's batched ranking against the obvious one: per passage and decided frame, the
    features with a positive contribution, largest first, ties in feature order, at most top_n."""
    texts = [p["text"] for p in passages[::3]] + ODD
    records = champion.predict(texts)
    X = champion.features(texts).tocsr()[:, champion._evidence_columns].tocsr()
    X.sort_indices()
    some = 0
    for i, rec in enumerate(records):
        row = X.getrow(i)
        for j, frame in enumerate(champion.frame_names):
            if frame not in rec["decided_frames"]:
                assert frame not in rec["evidence"]
                continue
            contrib = row.data * champion._evidence_weights[j, row.indices]
            ranked = sorted(range(len(contrib)), key=lambda k: (-contrib[k], k))[: champion.evidence_top_n]
            assert rec["evidence"][frame] == [champion._feature_names[row.indices[k]] for k in ranked if contrib[k] > 0]
            some += bool(rec["evidence"][frame])
    assert some > 50
