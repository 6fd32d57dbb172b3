"""Byte ranges of line-oriented files (JSONL), so one big file can be read by many workers.

A file is cut at fixed byte offsets; a line belongs to the range holding its first byte, so
every line is read exactly once whatever the cut points. Reading a range needs no knowledge of
the others; its first line number is the sum of the line counts of the ranges before it
(``count_lines``, a fast byte scan), which lets error messages name ``file:line`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """Lines of ``path`` whose first byte lies in [start, end); ``first_line`` is 1-based (0: not yet known)."""

    path: str
    start: int
    end: int
    first_line: int = 0


def split(path: str | Path, chunk_bytes: int) -> list[Chunk]:
    """Cut ``path`` into ranges of about ``chunk_bytes`` (no reading; an empty file gives one empty range)."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    size = Path(path).stat().st_size
    bounds = list(range(0, size, chunk_bytes)) + [size]
    if len(bounds) == 1:
        bounds = [0, 0]
    return [Chunk(str(path), a, b) for a, b in zip(bounds, bounds[1:])]


def _line_start(fh, start: int) -> int:
    """The offset of the first line starting at or after ``start``."""
    if start == 0:
        return 0
    fh.seek(start - 1)
    if fh.read(1) == b"\n":
        return start
    fh.readline()  # the rest of a line owned by the previous range
    return fh.tell()


def raw_lines(chunk: Chunk) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes with their newline) of each line of ``chunk``.

    Line numbers count from ``chunk.first_line`` (1 when unknown, i.e. relative to the range).
    """
    lineno = chunk.first_line or 1
    with open(chunk.path, "rb") as fh:
        pos = _line_start(fh, chunk.start)
        fh.seek(pos)
        while pos < chunk.end:
            line = fh.readline()
            if not line:
                break
            yield lineno, line
            lineno += 1
            pos += len(line)


def count_lines(chunk: Chunk) -> int:
    """How many lines start in ``chunk`` (block-wise newline count; never holds a whole line)."""
    if chunk.end <= chunk.start:
        return 0
    with open(chunk.path, "rb") as fh:
        first = _line_start(fh, chunk.start)
        if first >= chunk.end:
            return 0
        # Lines starting in [first, end): the one at ``first`` plus one per newline at a position in
        # [first, end - 1) (a newline at end - 1 starts the next range's first line; one at the last byte
        # of the file starts nothing, and end - 1 <= size - 1 keeps it out).
        fh.seek(first)
        remaining, newlines = chunk.end - 1 - first, 0
        while remaining > 0:
            block = fh.read(min(_BLOCK, remaining))
            if not block:
                break
            newlines += block.count(b"\n")
            remaining -= len(block)
        return 1 + newlines


def numbered(chunks: Sequence[Chunk], counts: Sequence[int]) -> list[Chunk]:
    """``chunks`` (in file order, several files allowed) with ``first_line`` set from their line counts."""
    out, starts = [], {}
    for chunk, n in zip(chunks, counts):
        first = starts.get(chunk.path, 1)
        out.append(Chunk(chunk.path, chunk.start, chunk.end, first))
        starts[chunk.path] = first + n
    return out

