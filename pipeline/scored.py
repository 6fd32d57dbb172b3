"""The columns of a scored passage: what `framing score` writes (both engines) and the pyfunc's
``output: record`` returns. `framing report` reads exactly these, so they change only together.

After the input's own fields (id, metadata, the text), in this order:

    frame_<frame key>    float64   the frame's probability, one column per frame, in the model's order
    decided_frames       list<str> frames at or above their tuned threshold
    stance               str       the most probable stance
    stance_<stance key>  float64   one column per stance
    evidence             str       JSON object: decided frame → the phrases that pushed it most
    model_name           str       the registered model name (or, for a model file, its FramingModel name)
    model_version        str       the registry version (or ``sha256:<12 hex>`` of the model file)
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pyarrow as pa

FRAME_PREFIX = "frame_"
STANCE_PREFIX = "stance_"
MODEL_FIELDS = ("model_name", "model_version")


def prediction_names(frame_names: Sequence[str], stance_names: Sequence[str]) -> list[str]:
    """The prediction columns, in output order (without model_name/model_version)."""
    return ([FRAME_PREFIX + f for f in frame_names] + ["decided_frames", "stance"]
            + [STANCE_PREFIX + s for s in stance_names] + ["evidence"])


def prediction_schema(frame_names: Sequence[str], stance_names: Sequence[str]) -> pa.Schema:
    """Arrow schema of the prediction columns."""
    fields = [pa.field(FRAME_PREFIX + f, pa.float64()) for f in frame_names]
    fields += [pa.field("decided_frames", pa.list_(pa.string())), pa.field("stance", pa.string())]
    fields += [pa.field(STANCE_PREFIX + s, pa.float64()) for s in stance_names]
    fields += [pa.field("evidence", pa.string())]
    return pa.schema(fields)


def output_schema(input_schema: pa.Schema, frame_names: Sequence[str], stance_names: Sequence[str]) -> pa.Schema:
    """The whole output row: input fields, prediction columns, model name and version."""
    return pa.schema([*input_schema, *prediction_schema(frame_names, stance_names),
                      *(pa.field(name, pa.string(), nullable=False) for name in MODEL_FIELDS)])


def prediction_columns(records: Sequence[dict[str, Any]], frame_names: Sequence[str],
                       stance_names: Sequence[str]) -> dict[str, list]:
    """``FramingModel.predict`` records → one Python list per prediction column (keys in output order)."""
    cols: dict[str, list] = {FRAME_PREFIX + f: [r["frames"][f] for r in records] for f in frame_names}
    cols["decided_frames"] = [list(r["decided_frames"]) for r in records]
    cols["stance"] = [r["stance"] for r in records]
    cols.update({STANCE_PREFIX + s: [r["stance_scores"][s] for r in records] for s in stance_names})
    cols["evidence"] = [json.dumps(r["evidence"], ensure_ascii=False) for r in records]
    return cols


def prediction_table(records: Sequence[dict[str, Any]], frame_names: Sequence[str],
                     stance_names: Sequence[str]) -> pa.Table:
    """The prediction columns as an Arrow table."""
    schema = prediction_schema(frame_names, stance_names)
    cols = prediction_columns(records, frame_names, stance_names)
    return pa.table([pa.array(cols[f.name], f.type) for f in schema], schema=schema)


def reserved_names(frame_names: Sequence[str], stance_names: Sequence[str]) -> set[str]:
    """Names an input field may not keep (it is written as ``input_<name>`` instead)."""
    return {*prediction_names(frame_names, stance_names), *MODEL_FIELDS}
