import unicodedata

from hypothesis import given, strategies as st

from pipeline.textnorm import normalize, passage_id


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
