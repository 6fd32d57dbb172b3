"""The framing model, by concept: ``features`` (text → matrices), ``heads`` (matrices → probabilities),
``inference`` (the same forward pass without scikit-learn) and ``artifact`` (``FramingModel``: the one
saved object that serving, evaluation and annotation load).

Names are re-exported here lazily (PEP 562), so ``from pipeline.model import FramingModel`` does not
import scikit-learn, and models pickled before the split (format 1, classes under
``pipeline.model``) still unpickle. This package never imports MLflow, so serving stays light.
"""

import importlib

from pipeline.model.artifact import MODEL_FORMAT, FramingModel

_LAZY = {name: "pipeline.model.features" for name in
         ("CueEmbeddingFeatures", "CueFeaturizer", "MixedFeatures", "StaticEmbedder", "cue_matrix")}
_LAZY |= {name: "pipeline.model.heads" for name in
          ("BlendedHead", "CalibratedLinearSVC", "LexiconFrames", "LexiconStance", "MultiLabelHead", "StanceHead",
           "linear_weights")}

__all__ = ["MODEL_FORMAT", "FramingModel", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
