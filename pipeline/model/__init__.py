"""The framing model, by concept: ``features`` (text → matrices), ``heads`` (matrices → probabilities)
and ``artifact`` (``FramingModel``: the one saved object that serving, evaluation and annotation load).

Names are re-exported here so ``from pipeline.model import FramingModel`` keeps working, and
models pickled before the split (format 1, classes under ``pipeline.model``) still unpickle.
This package never imports MLflow, so serving stays light.
"""

from pipeline.model.artifact import MODEL_FORMAT, FramingModel
from pipeline.model.features import CueEmbeddingFeatures, CueFeaturizer, MixedFeatures, StaticEmbedder, cue_matrix
from pipeline.model.heads import (BlendedHead, CalibratedLinearSVC, LexiconFrames, LexiconStance, MultiLabelHead,
                                  StanceHead, linear_weights)

__all__ = ["MODEL_FORMAT", "FramingModel", "CueEmbeddingFeatures", "CueFeaturizer", "MixedFeatures", "StaticEmbedder", "cue_matrix",
           "BlendedHead", "CalibratedLinearSVC", "LexiconFrames", "LexiconStance", "MultiLabelHead", "StanceHead",
           "linear_weights"]
