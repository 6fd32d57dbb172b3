"""`framing predict`: frames, stance and evidence for passages, as JSON lines.

    framing predict "text one" "text two"
    framing predict --file passages.jsonl            # one {"text": ...} object per line
    framing predict --from-registry "text"           # the registry's champion instead of models/model.pkl
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.textnorm import find_surrogate

log = logging.getLogger(__name__)


def read_texts(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line of a JSONL file; InputError names file:line."""
    from pipeline.ingest import jsonl_records

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    for lineno, record in jsonl_records(path):
        yield lineno, record["text"]


def load_model(model_path: str | Path | None = None, from_registry: bool = False, model_name: str | None = None,
               alias: str | None = None, params: str | Path = "configs/params.yaml"):
    """The FramingModel from a file, or ``model_name@alias`` (default: params.yaml's) from the MLflow registry."""
    from pipeline.model import FramingModel

    if from_registry:
        from pipeline.config import load_params
        from pipeline.registry import load_champion
        from pipeline.tracking import tracking_uri

        train = load_params(params).train
        return load_champion(tracking_uri(), model_name or train.model_name, alias or train.alias)
    return FramingModel.load(model_path or "models/model.pkl")


def predict_lines(model, texts: list[str], batch_size: int = 256, progress: bool = False) -> Iterator[dict]:
    """predict() in batches (bounded memory, one progress tick per text)."""
    with tqdm(total=len(texts), desc="predict", unit="text", disable=not progress or None, file=sys.stderr) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            yield from model.predict(batch)
            bar.update(len(batch))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing predict", description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*", help="passages to classify")
    parser.add_argument("--file", help="JSONL file with a 'text' field per line")
    parser.add_argument("--model", default="models/model.pkl")
    parser.add_argument("--from-registry", action="store_true", help="load <model-name>@<alias> via MLflow")
    parser.add_argument("--params", default="configs/params.yaml", help="where --from-registry finds the defaults")
    parser.add_argument("--model-name", help="default: train.model_name in params.yaml")
    parser.add_argument("--alias", help="default: train.alias in params.yaml")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    texts = list(args.texts)
    for i, text in enumerate(texts, start=1):
        if find_surrogate(text) is not None:  # undecodable bytes in argv arrive as lone surrogates
            raise InputError(f"argument {i}: not valid UTF-8 text")
    if args.file:
        # Every line is read and checked before the first prediction is printed: a bad line
        # (malformed JSON, no text, invalid Unicode) stops the command with nothing written.
        texts += [t for _, t in read_texts(args.file)]
    if not texts:
        parser.error("give passages as arguments or --file passages.jsonl")
    model = load_model(args.model, args.from_registry, args.model_name, args.alias, args.params)
    for text, record in zip(texts, predict_lines(model, texts, args.batch_size, progress=bool(args.file))):
        print(json.dumps({"text": text, **record}, ensure_ascii=False))
