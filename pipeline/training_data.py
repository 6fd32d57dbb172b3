"""What the train and evaluate stages read: the dataset stage's DatasetDict as arrays, and CV folds.

``load_data`` returns train+validation (selection and refit) and test (scored once) as
``Split``s whose texts are already model-normalised, exactly as ``FramingModel`` normalises
at predict time, so fitting and predicting cannot drift. The column list is the dataset
stage's own (``pipeline.dataset.features``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset import SPLITS
from pipeline.errors import InputError
from pipeline.textnorm import model_text



@dataclass
class Split:
    ids: list[str]
    texts: list[str]
    groups: list[str]
    docs: list[str]
    Y: np.ndarray  # (n, n_frames) 0/1
    y: np.ndarray  # (n,) stance codes
    fold: np.ndarray
    outlets: list[str] = field(default_factory=list)
    outlet_types: list[str] = field(default_factory=list)

    def take(self, idx: np.ndarray) -> "Split":
        pick = lambda xs: [xs[i] for i in idx] if xs else []  # noqa: E731
        return Split(pick(self.ids), pick(self.texts), pick(self.groups), pick(self.docs), self.Y[idx], self.y[idx],
                     self.fold[idx], pick(self.outlets), pick(self.outlet_types))

    @classmethod
    def concat(cls, parts: list["Split"]) -> "Split":
        join = lambda name: sum((getattr(p, name) for p in parts), [])  # noqa: E731
        return cls(join("ids"), join("texts"), join("groups"), join("docs"),
                   np.vstack([p.Y for p in parts]), np.concatenate([p.y for p in parts]),
                   np.concatenate([p.fold for p in parts]), join("outlets"), join("outlet_types"))

    def frame(self):
        """pandas view for mlflow.data (labels as lists of codes / codes)."""
        import pandas as pd

        return pd.DataFrame({"id": self.ids, "text": self.texts, "group": self.groups,
                             "frames": [list(np.flatnonzero(r).astype(int).tolist()) for r in self.Y],
                             "stance": self.y.astype(int), "fold": self.fold.astype(int)})


@dataclass
class Data:
    frame_names: list[str]
    stance_names: list[str]
    trainval: Split
    test: Split


def _names(feature: Any, column: str, where: str) -> list[str]:
    inner = getattr(feature, "feature", feature)  # Sequence/List(ClassLabel) or ClassLabel
    names = getattr(inner, "names", None)
    if not names:
        raise InputError(f"{where}: column '{column}' must be a ClassLabel (or a sequence of ClassLabel), got {feature}")
    return list(names)


def load_data(path: str | Path) -> Data:
    """Read the dataset stage's DatasetDict; label names come from its features."""
    import datasets

    from pipeline.dataset import features

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: dataset not found (run the dataset stage first)")
    try:
        dd = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a bad folder
        raise InputError(f"{path}: not a saved DatasetDict ({exc})") from None
    missing = [s for s in SPLITS if s not in dd]
    if missing:
        raise InputError(f"{path}: missing split(s) {missing}; expected {list(SPLITS)}")
    columns = list(features(["_"], ["_"]))
    for split in SPLITS:
        absent = [c for c in columns if c not in dd[split].column_names]
        if absent:
            raise InputError(f"{path}: split '{split}' lacks column(s) {absent}")
    feats = dd["train"].features
    frame_names = _names(feats["frames"], "frames", str(path))
    stance_names = _names(feats["stance"], "stance", str(path))

    def split(name: str) -> Split:
        d = dd[name]
        Y = np.zeros((len(d), len(frame_names)), dtype=int)
        for i, codes in enumerate(d["frames"]):
            Y[i, list(codes)] = 1
        return Split(list(d["id"]), [model_text(t) for t in d["text"]], list(d["group"]), list(d["doc_id"]), Y,
                     np.asarray(d["stance"], dtype=int), np.asarray(d["fold"], dtype=int), list(d["outlet"]),
                     list(d["outlet_type"]))

    trainval = Split.concat([split("train"), split("validation")])
    if len(set(trainval.fold[trainval.fold >= 0].tolist())) < 2:
        raise InputError(f"{path}: column 'fold' has fewer than 2 folds over train+validation; cannot cross-validate")
    return Data(frame_names, stance_names, trainval, split("test"))


def check_outlet_folds(split: Split, where: str) -> None:
    """InputError unless every outlet of ``split`` lies in one CV fold (``train.cv: outlet``)."""
    folds: dict[str, set[int]] = {}
    for outlet, fold in zip(split.outlets, split.fold.tolist()):
        folds.setdefault(outlet, set()).add(fold)
    spread = sorted(o for o, f in folds.items() if len(f) > 1)
    if spread:
        raise InputError(f"{where}: outlets {spread[:5]} span several CV folds: the dataset was not grouped by outlet; "
                         "set dataset.group_by: outlet (or train.cv: fold)")
    if len(set(split.fold.tolist())) < 2:
        raise InputError(f"{where}: fewer than 2 CV folds of outlets; annotate passages of more outlets")


def document_folds(split: Split) -> np.ndarray:
    """Leave-one-document-out fold per row: the index of its document among the split's documents.

    A near-duplicate group spread over several documents goes with its first row's document,
    so no group straddles a held-out document and its training folds.
    """
    group_doc: dict[str, str] = {}
    for group, doc in zip(split.groups, split.docs):
        group_doc.setdefault(group, doc)
    order = {doc: i for i, doc in enumerate(sorted(set(group_doc.values())))}
    return np.array([order[group_doc[g]] for g in split.groups], dtype=int)
