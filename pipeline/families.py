"""Model families: each family's hyperparameters with their defaults, and which featuriser it reads.

``train.candidates`` in params.yaml names families and grids of these hyperparameters;
``pipeline.candidates`` builds and fits them. No scikit-learn here: params.yaml validation
reads this table.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any

from pipeline.typed import coerce


@dataclass(frozen=True)
class NoHyperparameters:
    pass


@dataclass(frozen=True)
class LinearHyperparameters:
    C: float = 1.0
    class_weight: str | None = "balanced"


@dataclass(frozen=True)
class SvmHyperparameters(LinearHyperparameters):
    cv: int = 3  # calibration folds (fewer when a class is smaller)


@dataclass(frozen=True)
class NaiveBayesHyperparameters:
    alpha: float = 1.0


@dataclass(frozen=True)
class PriorBlendHyperparameters(LinearHyperparameters):
    prior_weight: float = 0.5  # weight of the cue lexicon in the blend


@dataclass(frozen=True)
class MixHyperparameters(LinearHyperparameters):
    C: float = 10.0
    embedding_weight: float = 1.0   # scale of the sentence-embedding columns
    cue_weight: float = 0.3         # scale of the cue columns
    char_ngrams: bool = False       # add char_wb n-grams (train.features.char_ngram): slower to predict


@dataclass(frozen=True)
class LexiconHyperparameters:
    alpha: float = 1.0  # stance: smoothing towards the training prior


@dataclass(frozen=True)
class Family:
    """A model family: its hyperparameters and which featuriser it reads."""

    kind: str
    hyperparameters: type
    featurizer: str  # "cues" | "tfidf" | "embedding" | "cue_embedding" | "mixed"
    baseline: bool = False

    def hyperparameter_names(self) -> list[str]:
        return [f.name for f in fields(self.hyperparameters)]

    def check(self, key: str, value: Any, where: str) -> None:
        """InputError unless ``value`` is a valid value of hyperparameter ``key``."""
        coerce(typing.get_type_hints(self.hyperparameters)[key], value, where)

    @property
    def needs_embeddings(self) -> bool:
        return self.featurizer in ("embedding", "cue_embedding", "mixed")


FAMILIES: dict[str, Family] = {f.kind: f for f in (
    Family("most_frequent", NoHyperparameters, "cues", baseline=True),
    Family("lexicon", LexiconHyperparameters, "cues", baseline=True),
    Family("logreg", LinearHyperparameters, "tfidf"),
    Family("linear_svm", SvmHyperparameters, "tfidf"),
    Family("complement_nb", NaiveBayesHyperparameters, "tfidf"),
    Family("embed_logreg", LinearHyperparameters, "embedding"),
    Family("embed_prior", PriorBlendHyperparameters, "cue_embedding"),
    # Learned weighting: n-grams, negation-aware cues and the sentence embedding in one linear model.
    Family("linear_mix", MixHyperparameters, "mixed"),
)}
BASELINES = tuple(k for k, f in FAMILIES.items() if f.baseline)
