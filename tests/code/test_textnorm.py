import re
import unicodedata

from hypothesis import given, strategies as st

from pipeline.textnorm import _INVISIBLE, normalize, passage_id, valid_unicode


@given(st.text())
def test_normalize_is_idempotent(text):
    assert normalize(normalize(text)) == normalize(text)


@given(st.text())
def test_normalize_leaves_no_control_chars_or_runs_of_space(text):
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    assert not any(unicodedata.category(c) == "Cc" for c in out)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.sampled_from(["\u00a0", "\t", "\n", " \u200b "]))
def test_passage_id_ignores_whitespace_variants(text, space):
    words = text.split()
    assert passage_id(normalize(" ".join(words))) == passage_id(normalize(space.join(words)))


def test_normalize_unifies_compatibility_forms():
    assert normalize("ﬁnal\u00a0 report\x00\u200b!") == "final report!"
    assert normalize("e\u0301") == "é"


@given(st.text())
def test_model_text_is_idempotent_and_folds_typography(text):
    from pipeline.textnorm import model_text

    assert model_text(model_text(text)) == model_text(text)
    assert not set("‘’“”–—") & set(model_text(text))


# Any Python str, lone surrogates included (drawn half the time; st.text() would drop them).
ANY_STR = st.lists(st.characters(exclude_categories=()) | st.characters(categories=["Cs"])).map("".join)


@given(ANY_STR)
def test_normalize_is_defined_for_every_str_and_gives_valid_unicode(text):
    out = normalize(text)
    out.encode("utf-8")  # no lone surrogate survives: this never raises
    assert normalize(out) == out
    passage_id(out)


@given(st.text())
def test_text_without_surrogates_is_untouched_by_the_surrogate_repair(text):
    from pipeline.textnorm import valid_unicode

    assert valid_unicode(text) is text  # so passage ids of real text are what they always were


def test_a_lone_surrogate_becomes_the_replacement_character_and_a_pair_its_character():
    from pipeline.textnorm import find_surrogate, model_text, valid_unicode

    assert valid_unicode("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert valid_unicode("\ud83d\ude00") == "\U0001f600"  # a pair as two code points is the emoji
    assert model_text("Kim\udc80 and Putin") == "Kim\ufffd and Putin"
    assert find_surrogate("fine") is None and find_surrogate("x\udc80") == "\udc80"
    # The seed passages' ids do not move (annotations refer to them).
    assert passage_id(normalize("Russia and North Korea signed a treaty.")) == passage_id(
        "Russia and North Korea signed a treaty.")


# Every character Python's str.split() and re's \s treat as whitespace, and their neighbours.
_SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()] + ["\x1c", "\x1f", "\u200b", "\ufeff", "a", "b"]


def _normalize_by_regex(text: str) -> str:
    """The definition normalize had before it collapsed whitespace with str.split()."""
    text = valid_unicode(text)
    for _ in range(4):
        cleaned = re.sub(r"\s+", " ", _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))).strip()
        if cleaned == text:
            break
        text = cleaned
    return text


@given(st.text() | st.text(alphabet=st.sampled_from(_SPACES)))
def test_normalize_collapses_whitespace_exactly_as_the_regex_definition(text):
    # str.split() and \s both split at Py_UNICODE_ISSPACE characters; passage ids depend on this.
    assert normalize(text) == _normalize_by_regex(text)
