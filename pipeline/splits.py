"""Which split and CV fold each annotated passage belongs to: stable as the data grows.

A passage's *group* (``dataset.group_by``) is what must never straddle two splits: a
near-duplicate cluster, a set of linked documents, or a set of outlets (linked when a
near-duplicate cluster or a shared passage spans them). A group's split and fold are decided by
a hash of the group's name and the seed alone, so adding data never moves an existing group
(only a new passage that links two groups can merge them), and a model is never scored on a
passage that an earlier model of the same seed trained on. The price: splits are not stratified
by label, only large enough to be representative.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, Sequence

import numpy as np

from pipeline.unionfind import UnionFind


class Groupable(Protocol):
    cluster_id: str
    sources: tuple[str, ...]
    outlet: str


def split_groups(examples: Sequence[Groupable], group_by: str) -> list[str]:
    """Group name per example (``cluster``, ``document`` or ``outlet``)."""
    if group_by == "cluster":
        return [e.cluster_id for e in examples]

    def keys(e: Groupable) -> list[str]:
        return [f"outlet:{e.outlet}"] if group_by == "outlet" else list(e.sources)

    sets: UnionFind[str] = UnionFind()
    cluster_home: dict[str, str] = {}
    for e in examples:
        own = keys(e)
        for key in (*own, cluster_home.setdefault(e.cluster_id, own[0])):
            sets.union(own[0], key)
    return [sets.find(keys(e)[0]) for e in examples]


def unit(seed: int, purpose: str, key: str) -> float:
    """A number in [0, 1) fixed by (seed, purpose, key): SHA-256, so the same on every machine."""
    digest = hashlib.sha256(f"{seed}\x00{purpose}\x00{key}".encode("utf-8")).hexdigest()
    return int(digest[:13], 16) / 16**13


def assign_splits(groups: Sequence[str], test_fraction: float, validation_fraction: float, cv_folds: int,
                  seed: int) -> tuple[list[str], np.ndarray]:
    """(split name, CV fold or -1 for test) per row, from its group alone.

    A group goes to test when its hash unit is below ``test_fraction``, to validation below
    ``test_fraction + validation_fraction``, else to train; train and validation groups get the
    fold ``floor(unit · cv_folds)`` of a second hash. On tiny data, where hashing leaves test or
    train empty or the folds fewer than two, the groups nearest the boundary are moved instead.
    """
    names = sorted(set(groups))
    u = {g: unit(seed, "split", g) for g in names}
    split_of = {g: "test" if u[g] < test_fraction else
                "validation" if u[g] < test_fraction + validation_fraction else "train" for g in names}
    if len(names) >= 2:
        if "test" not in split_of.values():
            split_of[min(names, key=u.get)] = "test"
        if all(s == "test" for s in split_of.values()):
            split_of[max(names, key=u.get)] = "train"
    rest = [g for g in names if split_of[g] != "test"]
    fold_unit = {g: unit(seed, "fold", g) for g in rest}
    fold_of = {g: min(int(fold_unit[g] * cv_folds), cv_folds - 1) for g in rest}
    if len(rest) >= 2 and len(set(fold_of.values())) < 2:
        fold_of = {g: k % cv_folds for k, g in enumerate(sorted(rest, key=fold_unit.get))}
    split = [split_of[g] for g in groups]
    fold = np.array([-1 if split_of[g] == "test" else fold_of[g] for g in groups], dtype=np.int32)
    return split, fold
