"""CheckList-style behaviour tests on the champion trained from the shipped seeds.

Invariance: edits that do not change the framing (names, places, case,
whitespace, punctuation) must not change decisions. Directional: adding clear
pariah / deal / alliance wording must raise that frame's probability. Minimum
functionality: short unambiguous sentences per label.
"""

import re

import numpy as np
import pytest

NAME_SWAPS = [("Kim Jong Un", "Kim Yo Jong"), ("Vladimir Putin", "Dmitry Medvedev"), ("Putin", "Medvedev"),
              ("Vladivostok", "Khabarovsk"), ("Pyongyang", "Wonsan"), ("Shoigu", "Lavrov")]


def decisions(model, texts):
    return [(tuple(r["decided_frames"]), r["stance"]) for r in model.predict(texts)]


def seed_texts(passages):
    return [p["text"] for p in passages]


def swap_names(text):
    for old, new in NAME_SWAPS:
        text = text.replace(old, new)
    return text


# Case, whitespace, punctuation and quotes are normalised away inside the model: no decision may change.
# Names are not: the sentence embedding carries them (as it would for a human reader's associations), so
# as in CheckList a small failure rate is tolerated and the test fails when it grows.
MAX_NAME_SWAP_FLIP_RATE = 0.05


@pytest.mark.parametrize("perturb", [
    pytest.param(str.lower, id="lower-case"),
    pytest.param(str.upper, id="upper-case"),
    pytest.param(lambda t: "  " + t.replace(" ", "   ").replace(", ", " ,\n") + "\t", id="whitespace"),
    pytest.param(lambda t: re.sub(r"[.!?]+$", "", t) + "!", id="final-punctuation"),
    pytest.param(lambda t: t.replace("’", "'").replace("“", '"').replace("”", '"'), id="typographic-quotes"),
])
def test_invariance(champion, passages, perturb):
    texts = seed_texts(passages)
    changed = [(t[:60], a, b) for t, a, b in zip(texts, decisions(champion, texts), decisions(champion, map(perturb, texts)))
               if a != b]
    assert not changed, changed[:3]


def test_invariance_to_person_and_place_names(champion, passages):
    texts = seed_texts(passages)
    changed = [(t[:60], a, b) for t, a, b in zip(texts, decisions(champion, texts), decisions(champion, map(swap_names, texts)))
               if a != b]
    assert len(changed) / len(texts) <= MAX_NAME_SWAP_FLIP_RATE, changed


DIRECTIONAL = {
    "isolated_pariah": " Both are isolated, heavily sanctioned pariah states, shunned as international outcasts.",
    "transactional": " Moscow is buying shells and ammunition, paying Pyongyang with oil, food and cash in exchange.",
    "strategic_partnership": " They signed a comprehensive strategic partnership and a mutual defence treaty, an alliance against the West.",
}


@pytest.mark.parametrize("frame", list(DIRECTIONAL))
def test_directional_wording_raises_its_frame(champion, passages, frame):
    texts = seed_texts(passages)
    j = champion.frame_names.index(frame)
    before = champion.predict_proba(texts)[0][:, j]
    Pf_after = champion.predict_proba([t + DIRECTIONAL[frame] for t in texts])[0]
    after = Pf_after[:, j]
    assert np.all(after >= before - 1e-9)  # never lowers it
    assert np.mean(after > before + 1e-9) >= 0.9  # and raises it almost everywhere (saturated ones may stay)
    decided = champion.decide(Pf_after)[:, j]
    assert decided.mean() >= 0.9


# Each text is about the relationship: by the guidelines, a passage about one party alone
# ("The reclusive regime is an international outcast.") is off-topic, so it has no frame.
MFT_FRAMES = {
    "isolated_pariah": ["Two international outcasts, Moscow and the reclusive regime in Pyongyang, are huddling "
                        "together in their isolation.",
                        "Shunned by the world, the Kremlin now courts the reclusive regime in Pyongyang, a fellow outcast."],
    "transactional": ["Russia is buying artillery shells from North Korea in exchange for oil.",
                      "Pyongyang sells munitions to Moscow for cash and food."],
    "strategic_partnership": ["The two countries signed a comprehensive strategic partnership and a mutual defence treaty.",
                              "Moscow and Pyongyang form an alliance, a common front against the West."],
}


@pytest.mark.parametrize("frame", list(MFT_FRAMES))
def test_minimum_functionality_frames(champion, frame):
    for result, text in zip(champion.predict(MFT_FRAMES[frame]), MFT_FRAMES[frame]):
        assert frame in result["decided_frames"], (text, result["frames"])
        assert result["evidence"][frame], "a decided frame comes with evidence"


@pytest.mark.parametrize("stance, text", [
    ("critical", "This dangerous, illegitimate arms deal violates UN sanctions and is unlikely to work."),
    ("neutral", "Putin met Kim in Vladivostok on Wednesday."),
    ("supportive", "Both leaders praised their friendship and support for each other."),
])
def test_minimum_functionality_stance(champion, stance, text):
    assert champion.predict([text])[0]["stance"] == stance


def test_output_contract(champion, schema):
    (result,) = champion.predict(["Kim sells shells to Putin."])
    assert list(result["frames"]) == schema.frame_names
    assert list(result["stance_scores"]) == schema.stance_names
    assert abs(sum(result["stance_scores"].values()) - 1) < 1e-6
    assert all(0 <= p <= 1 for p in result["frames"].values())
