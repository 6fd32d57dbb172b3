"""Model outputs → Label Studio pre-annotations and confidence (shared by push and the ML backend)."""

import pytest

from pipeline.annotations import parse_task
from pipeline.labelstudio.prediction import LabelMismatch, Labels, confidence, prediction, uncertainty


def labels(schema) -> Labels:
    return Labels(tuple(schema.frame_names), tuple(schema.stance_names),
                  {l.key: l.display for l in (*schema.frames, *schema.stance)})


OUTPUT = {"frames": {"isolated_pariah": 0.1, "transactional": 0.8, "strategic_partnership": 0.6},
          "decided_frames": ["strategic_partnership", "transactional"], "stance": "critical",
          "stance_scores": {"critical": 0.7, "neutral": 0.2, "supportive": 0.1}}


def test_prediction_carries_frames_stance_scores_and_version(schema):
    pred = prediction(OUTPUT, labels(schema), "lexicon@abc")
    assert pred["model_version"] == "lexicon@abc" and pred["score"] == confidence(OUTPUT)
    frames, stance = pred["result"]
    assert frames["from_name"] == "frames" and frames["value"]["choices"] == ["Transactional", "Strategic partnership"]
    assert frames["score"] == 0.6 and stance["value"]["choices"] == ["Critical"] and stance["score"] == 0.7
    # a prediction's result is a valid annotation result for the schema
    (record,) = parse_task({"id": 1, "data": {"text": "t", "passage_id": "p"},
                            "annotations": [{"id": 1, "completed_by": 1, "result": pred["result"]}]}, schema, "x")
    assert record.frames == {"transactional", "strategic_partnership"} and record.stance == "critical"


def test_prediction_without_decided_frames_has_only_stance(schema):
    pred = prediction({**OUTPUT, "decided_frames": []}, labels(schema), "m")
    assert [r["from_name"] for r in pred["result"]] == ["stance"]


def test_prediction_with_labels_outside_the_schema_is_refused(schema):
    with pytest.raises(LabelMismatch, match="hostile"):
        prediction({**OUTPUT, "stance": "hostile", "stance_scores": {"hostile": 1.0}}, labels(schema), "m")


def test_uncertainty_and_confidence():
    certain = {"frames": {"a": 0.0, "b": 1.0}, "stance_scores": {"x": 1.0, "y": 0.0, "z": 0.0}}
    coin = {"frames": {"a": 0.5, "b": 0.5}, "stance_scores": {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}}
    assert uncertainty(certain) == 0.0 and confidence(certain) == 1.0
    assert uncertainty(coin) == pytest.approx(1.0) and confidence(coin) == pytest.approx(0.0)
    assert 0 < uncertainty(OUTPUT) < 1
