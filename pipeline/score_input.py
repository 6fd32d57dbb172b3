"""What `framing score` reads: a JSONL file or folder (a ``text`` field per line, every other field
kept) or a Parquet file or dataset folder, cut into parts.

A part is the unit of parallel work, of output files and of resuming: a byte range of a JSONL file
(``pipeline.linechunks``: lines never straddle two parts) or one row group of a Parquet file. Both
engines run the same three steps through a ``mapper`` (a process pool, or Spark tasks):

1. ``plan``: the parts, with the line (JSONL) or row (Parquet) each starts at;
2. ``inspect``: per part, a SHA-256 of its bytes, its row count and (JSONL) the JSON kinds of each
   field; a bad row raises InputError naming file and line/row, before anything is written;
3. ``read_part``: the rows as Arrow tables with one schema for the whole input (``input_fields``).

JSONL fields become columns by the kinds seen across the whole input: only booleans → bool, only
integers → int64, integers and/or floats → float64, only strings → string; anything else (objects,
lists, mixed kinds) → a string column holding each value as JSON; a field never set → string, all null.
Rows without a field get null. An input field named like an output column (``stance``,
``frame_…``, ``model_name``, …) is written as ``input_<name>``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import InputError
from pipeline.linechunks import Chunk, count_lines, numbered, split

Mapper = Callable[[Callable, Sequence], list]
_KIND_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string(),
               "json": pa.string(), "null": pa.string()}
_TEXT_ERROR = "field 'text' is missing, not a string, or empty"


@dataclass(frozen=True)
class Part:
    """``kind`` "jsonl": bytes [start, end) of ``path`` from line ``first``; "parquet": row group
    ``start`` of ``path``, whose first row is row ``first`` of the file (0-based)."""

    kind: str
    path: str
    start: int
    end: int
    first: int

    def key(self) -> list:
        return [self.kind, self.path, self.start, self.end]


@dataclass(frozen=True)
class PartInfo:
    rows: int
    digest: str
    kinds: dict[str, list[str]]  # JSONL: field → JSON kinds seen, fields in order of first appearance


@dataclass(frozen=True)
class Field:
    """An output column taken from the input: its name there, its name here, and how values convert."""

    source: str
    name: str
    kind: str  # a JSONL kind, or "arrow" (Parquet: the column as stored)


# --------------------------------------------------------------------------- 1. plan


def input_files(path: str | Path) -> tuple[str, list[Path]]:
    """("jsonl" | "parquet", the files in sorted order) of a file or folder; InputError if neither."""
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".parquet"):
            return suffix[1:], [path]
        raise InputError(f"{path}: expected a .jsonl or .parquet file, or a folder of them")
    if not path.is_dir():
        raise InputError(f"{path}: input not found")
    # Hidden and underscore files are a dataset's bookkeeping (Spark's _SUCCESS, .crc, our _plan.json).
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    kinds = {p.suffix.lower() for p in files} & {".jsonl", ".parquet"}
    if len(kinds) != 1:
        found = "both .jsonl and .parquet files" if kinds else "no .jsonl or .parquet files"
        raise InputError(f"{path}: expected a folder of .jsonl files or a Parquet dataset, found {found}")
    kind = kinds.pop()
    return kind[1:], [p for p in files if p.suffix.lower() == kind]


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError: the file is not readable Parquet
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def plan(path: str | Path, part_bytes: int, mapper: Mapper = lambda f, xs: list(map(f, xs))) -> list[Part]:
    """The parts of the input at ``path`` in input order (JSONL line numbers counted through ``mapper``)."""
    kind, files = input_files(path)
    if kind == "parquet":
        parts = []
        for f in files:
            md = _parquet_file(f).metadata
            first = 0
            for rg in range(md.num_row_groups):
                parts.append(Part("parquet", f.as_posix(), rg, rg + 1, first))
                first += md.row_group(rg).num_rows
        return parts
    chunks = [c for f in files for c in split(f, part_bytes)]
    counts = mapper(count_lines, chunks)
    return [Part("jsonl", c.path, c.start, c.end, c.first_line) for c in numbered(chunks, counts)]


# --------------------------------------------------------------------------- 2. inspect


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(1 << 63) <= value < (1 << 63) else "json"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _chunk(part: Part) -> Chunk:
    return Chunk(part.path, part.start, part.end, part.first)


def _jsonl_records(part: Part) -> Iterator[tuple[int, dict]]:
    from pipeline.ingest import jsonl_records  # one JSONL reader (and one set of messages) for the project

    return jsonl_records(Path(part.path), _chunk(part))


def _hash_range(path: str, start: int, end: int, digest) -> None:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(1 << 20, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)


def inspect(part: Part) -> PartInfo:
    """Check every row of ``part`` (InputError naming file and line/row) and describe it."""
    digest = hashlib.sha256()
    if part.kind == "jsonl":
        _hash_range(part.path, part.start, part.end, digest)
        kinds: dict[str, set] = {}
        rows = 0
        for _, record in _jsonl_records(part):
            rows += 1
            for name, value in record.items():
                kinds.setdefault(name, set()).add(_kind(value))
        return PartInfo(rows, digest.hexdigest(), {k: sorted(v) for k, v in kinds.items()})
    pf = _parquet_file(Path(part.path))
    rg = pf.metadata.row_group(part.start)
    for j in range(rg.num_columns):  # the row group's bytes: every column chunk
        col = rg.column(j)
        offset = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
        _hash_range(part.path, offset, offset + col.total_compressed_size, digest)
    text = _parquet_text(pf, part)
    bad = pc.or_kleene(pc.is_null(text), pc.equal(pc.utf8_length(
        pc.utf8_trim_whitespace(text)), 0))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        row = part.first + pc.index(bad, True).as_py()
        raise InputError(f"{part.path}: row {row} (counting from 0): {_TEXT_ERROR}")
    return PartInfo(rg.num_rows, digest.hexdigest(), {})


def _parquet_text(pf, part: Part) -> pa.ChunkedArray:
    if "text" not in pf.schema_arrow.names:
        raise InputError(f"{part.path}: no 'text' column (columns: {pf.schema_arrow.names})")
    text_type = pf.schema_arrow.field("text").type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputError(f"{part.path}: column 'text' is {text_type}, expected strings")
    try:
        return pf.read_row_group(part.start, columns=["text"]).column("text")
    except Exception as exc:  # noqa: BLE001 - corrupt pages surface here
        raise InputError(f"{part.path}: row group {part.start} is not readable ({type(exc).__name__}: {exc})") from None


def digest_of(parts: Sequence[Part], infos: Sequence[PartInfo]) -> str:
    """SHA-256 of the whole input: each part's location and bytes, in input order."""
    h = hashlib.sha256()
    for part, info in zip(parts, infos):
        h.update(json.dumps([*part.key(), info.digest]).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- 3. schema and reading


def input_fields(parts: Sequence[Part], infos: Sequence[PartInfo], reserved: set[str]) -> tuple[list[Field], pa.Schema]:
    """The input columns of the output (renamed where they clash with ``reserved``) and their Arrow schema."""
    if parts and parts[0].kind == "parquet":
        schema = _parquet_schema(sorted({p.path for p in parts}, key=[p.path for p in parts].index))
        sources = [(f.name, "arrow", f.type) for f in schema]
    else:
        kinds: dict[str, set] = {}
        for info in infos:
            for name, ks in info.kinds.items():
                kinds.setdefault(name, set()).update(ks)
        sources = []
        for name, ks in kinds.items():
            ks = ks - {"null"} or {"null"}
            kind = (ks.pop() if len(ks) == 1 else "float" if ks == {"int", "float"} else "json")
            sources.append((name, kind, _KIND_TYPES[kind]))
    fields, arrow, taken = [], [], {name for name, _, _ in sources} | reserved
    for name, kind, type_ in sources:
        out = name
        if name in reserved:
            out = "input_" + name
            while out in taken:
                out = "input_" + out
            taken.add(out)
        fields.append(Field(name, out, kind))
        arrow.append(pa.field(out, type_))
    return fields, pa.schema(arrow)


def _parquet_schema(files: Sequence[str]) -> pa.Schema:
    schemas = [_parquet_file(Path(f)).schema_arrow.remove_metadata() for f in files]
    try:
        return pa.unify_schemas(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{files[0]}: the Parquet files do not share one schema ({exc})") from None


def _convert(kind: str, value: Any) -> Any:
    if value is None or kind not in ("json", "float"):
        return value
    return float(value) if kind == "float" else json.dumps(value, ensure_ascii=False)


def read_part(part: Part, fields: Sequence[Field], schema: pa.Schema, batch_rows: int) -> Iterator[pa.Table]:
    """The rows of ``part`` as tables of at most ``batch_rows`` rows, with ``schema``."""
    if part.kind == "jsonl":
        cols: dict[str, list] = {f.name: [] for f in fields}

        def table() -> pa.Table:
            return pa.table([pa.array(cols[f.name], type=schema.field(f.name).type) for f in fields], schema=schema)

        n = 0
        for _, record in _jsonl_records(part):
            for f in fields:
                cols[f.name].append(_convert(f.kind, record.get(f.source)))
            n += 1
            if n == batch_rows:
                yield table()
                cols, n = {f.name: [] for f in fields}, 0
        if n:
            yield table()
        return
    pf = _parquet_file(Path(part.path))
    try:
        got = pf.read_row_group(part.start)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{part.path}: row group {part.start} is not readable ({type(exc).__name__}: {exc})") from None
    arrays = [got.column(f.source).cast(schema.field(f.name).type) if f.source in got.column_names
              else pa.nulls(got.num_rows, schema.field(f.name).type) for f in fields]
    whole = pa.table(arrays, schema=schema)
    for start in range(0, whole.num_rows, batch_rows):
        yield whole.slice(start, batch_rows)
