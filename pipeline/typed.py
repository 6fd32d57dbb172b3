"""Frozen dataclasses from YAML mappings: ``build`` checks unknown keys once and every field's type
from its annotation; each class checks its own ranges in ``__post_init__``.

Used for configs/params.yaml (``pipeline.config``) and the model families' hyperparameter grids
(``pipeline.families``).
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Literal, Mapping

from pipeline.errors import InputError


def build(cls, raw: Any, where: str):
    """Instantiate dataclass ``cls`` from a mapping; unknown keys and wrong types are InputErrors naming ``where``.

    A field whose metadata has ``parse`` is converted by that function instead of by its type.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = set(raw) - set(names)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name in raw:
            parse = f.metadata.get("parse")
            key = f"{where}.{f.name}" if not where.endswith(":") else f"{where} {f.name}"
            kwargs[f.name] = parse(raw[f.name], key) if parse else coerce(hints[f.name], raw[f.name], key)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"{where}: {exc}") from None


def coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` as type ``tp`` (dataclasses, tuples, optionals, literals, mappings and scalars)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return coerce(inner[0], value, where)
        for a in inner:
            try:
                return coerce(a, value, where)
            except InputError:
                continue
        raise InputError(f"{where}: expected one of {inner}, got {value!r}")
    if is_dataclass(tp):
        return build(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise InputError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (Mapping, dict) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        if not args:
            return dict(value)
        return {coerce(args[0], k, where): coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a number, got {value!r}")
        return value  # kept as written (1 stays 1): candidate names and reports quote it
    if tp is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported parameter type {tp!r}")  # a bug in this module, not in the YAML
