"""Stage `ingest`: documents → cleaned, de-duplicated passages.

Reads every .txt, .md, .html/.htm and .jsonl document under the ``ingest.input_dirs`` folders,
removes web-page boilerplate by the rules in params.yaml (navigation, photo
captions and credits, teasers, everything after an end-of-article marker),
cuts the rest into paragraphs and writes one JSON line per unique passage:

    {"id", "text", "doc_id", "paragraph_index", "char_start", "char_end", "date",
     "sources": [{"doc_id", "path", "paragraph_index", "char_start", "char_end", "date"}],
     "cluster_id", "meta"}

Documents are streamed paragraph by paragraph, so a 50 MB file costs a few
paragraphs of memory plus a small signature per unique passage.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
from collections import Counter, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from pipeline.config import IngestParams, load_params
from pipeline.dedup import MinHasher, cluster
from pipeline.errors import InputError
from pipeline.fsutil import atomic_open, write_json
from pipeline.linechunks import Chunk, raw_lines
from pipeline.textnorm import find_surrogate, normalize, passage_id

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm", ".jsonl")


@dataclass
class RawParagraph:
    """A paragraph as found in the source, with character offsets into it."""

    text: str
    start: int
    end: int
    line: int  # 1-based line where it starts (for messages)


@dataclass
class Document:
    doc_id: str
    path: str
    paragraphs: Iterable[RawParagraph]
    date: str | None = None
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _raw_lines(path: Path, chunk: Chunk | None = None) -> Iterator[tuple[int, bytes]]:
    if chunk is not None:
        yield from raw_lines(chunk)
        return
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def _decoded_lines(path: Path, chunk: Chunk | None = None) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a UTF-8 file (or of one byte range of it), failing clearly on binary or bad bytes."""
    for lineno, raw in _raw_lines(path, chunk):
        if b"\x00" in raw:
            raise InputError(f"{path}:{lineno}: looks like a binary file (NUL byte); expected UTF-8 text")
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "re-save the file as UTF-8"
            ) from None


def _split_paragraphs(lines: Iterable[tuple[int, str]], mode: str, offset: int = 0) -> Iterator[RawParagraph]:
    """Cut lines into paragraphs: one per non-empty line, or one per blank-line block."""
    pos = offset
    block: list[str] = []
    block_start = block_line = 0
    for lineno, line in lines:
        body = line.rstrip("\r\n")
        if mode == "line":
            if body.strip():
                lead = len(body) - len(body.lstrip())
                yield RawParagraph(body.strip(), pos + lead, pos + lead + len(body.strip()), lineno)
        elif body.strip():
            if not block:
                block_start, block_line = pos + len(body) - len(body.lstrip()), lineno
            block.append(body)
        elif block:
            text = "\n".join(block).strip()
            yield RawParagraph(text, block_start, block_start + len(text), block_line)
            block = []
        pos += len(line)
    if block:
        text = "\n".join(block).strip()
        yield RawParagraph(text, block_start, block_start + len(text), block_line)


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKUP = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`]{1,3}", re.MULTILINE)


def _strip_markdown(text: str) -> str:
    return _MD_MARKUP.sub("", _MD_LINK.sub(r"\1", text))


class _MainTextParser(HTMLParser):
    """Collect block-level text, skipping page chrome (nav, header, footer, aside, figures, scripts).

    When the page has an <article> or <main>, only text inside it is kept.
    """

    SKIP = {"script", "style", "nav", "header", "footer", "aside", "figure", "figcaption", "form", "noscript", "svg", "button"}
    BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "div", "section", "article", "main", "br", "tr", "pre"}
    VOID = {"br", "img", "hr", "meta", "link", "input", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.main_depth = 0
        self.saw_main = False
        self.buf: list[str] = []
        self.blocks: list[tuple[str, bool]] = []  # (text, inside article/main)

    def _flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        if text:
            self.blocks.append((text, self.main_depth > 0))
        self.buf = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in ("article", "main"):
            self.main_depth += 1
            self.saw_main = True
        if tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.BLOCKS:
            self._flush()
        if tag in self.SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag in ("article", "main") and self.main_depth:
            self.main_depth -= 1

    def handle_startendtag(self, tag, attrs):
        if tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self.skip_depth:
            self.buf.append(data)


def _html_paragraphs(path: Path) -> Iterator[RawParagraph]:
    """Main-text paragraphs of an HTML page; offsets index the extracted main text."""
    parser = _MainTextParser()
    for _, line in _decoded_lines(path):
        parser.feed(line)
    parser.close()
    parser._flush()
    blocks = [text for text, in_main in parser.blocks if in_main or not parser.saw_main]
    pos = 0
    for i, text in enumerate(blocks):
        yield RawParagraph(text, pos, pos + len(text), i + 1)
        pos += len(text) + 2  # blocks joined by a blank line


def list_documents(input_dirs: Sequence[Path]) -> list[Path]:
    """The document files under each of ``input_dirs`` in turn, in sorted path order within each."""
    out = []
    for input_dir in input_dirs:
        paths = sorted(p for p in Path(input_dir).rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not paths:
            raise InputError(f"{input_dir}: no documents found (looked for {', '.join(SUFFIXES)})")
        out += paths
    return out


def read_documents(input_dirs: Sequence[Path], txt_mode: str) -> Iterator[Document]:
    """Yield the documents under each of ``input_dirs`` in turn, in sorted path order within each."""
    for path in list_documents(input_dirs):
        yield from file_documents(path, txt_mode)


def file_documents(path: Path, txt_mode: str, chunk: Chunk | None = None) -> Iterator[Document]:
    """The documents of one file; for a JSONL file, optionally only those of the lines in ``chunk``
    (whose ``first_line`` must be set, so paths name the right line)."""
    rel = path.as_posix()
    if path.stat().st_size == 0:
        raise InputError(f"{rel}: file is empty")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_documents(path, chunk)
    elif suffix in (".html", ".htm"):
        yield Document(path.stem, rel, _html_paragraphs(path))
    elif suffix == ".md":
        paras = (
            RawParagraph(_strip_markdown(p.text), p.start, p.end, p.line)
            for p in _split_paragraphs(_decoded_lines(path), "blank_line")
        )
        yield Document(path.stem, rel, paras)
    else:
        yield Document(path.stem, rel, _split_paragraphs(_decoded_lines(path), txt_mode))


def jsonl_records(path: Path, chunk: Chunk | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a JSONL file (or of the lines in ``chunk``) whose
    records carry a non-empty string ``text``; InputError names file:line for anything else."""
    for lineno, line in _decoded_lines(path, chunk):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{lineno}: expected a JSON object with a 'text' field")
        bad = _lone_surrogate(record)
        if bad is not None:  # json.loads accepts "\ud800", but no UTF-8 output (or id hash) can hold it
            field, char = bad
            raise InputError(f"{path}:{lineno}: field {field!r} holds a lone surrogate escape (\\u{ord(char):04x}), "
                             "which is not valid Unicode")
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{lineno}: field 'text' is missing, not a string, or empty")
        yield lineno, record


def _lone_surrogate(value, field: str = "") -> tuple[str, str] | None:
    """(field path, character) of the first lone surrogate in a decoded JSON value's strings or keys, or None."""
    if isinstance(value, str):
        char = find_surrogate(value)
        return None if char is None else (field, char)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{field}.{key}" if field else str(key)
        bad = _lone_surrogate(key, name) if isinstance(key, str) else None
        bad = bad or _lone_surrogate(item, name)
        if bad is not None:
            return bad
    return None


def _jsonl_documents(path: Path, chunk: Chunk | None = None) -> Iterator[Document]:
    seen_any = False
    for lineno, record in jsonl_records(path, chunk):
        text = record["text"]
        seen_any = True
        doc_key = str(record.get("id", lineno))
        meta = {k: v for k, v in record.items() if k not in ("text", "id", "date") and isinstance(v, (str, int, float, bool))}
        date = record.get("date") if isinstance(record.get("date"), str) else None
        lines = enumerate(text.splitlines(keepends=True), start=1)
        yield Document(f"{path.stem}:{doc_key}", f"{path.as_posix()}:{lineno}", _split_paragraphs(lines, "blank_line" if "\n\n" in text else "line"), date, meta)
    if not seen_any and chunk is None:  # for a byte range, the caller checks the whole file
        raise InputError(f"{path}: no documents (every line is blank)")


# --------------------------------------------------------------------------- cleaning


class Cleaner:
    """Applies the boilerplate rules of IngestParams to one document's paragraphs."""

    def __init__(self, params: IngestParams):
        self.params = params
        self.navigation = [re.compile(p) for p in params.navigation]
        self.credits = [re.compile(p) for p in params.credits]
        self.end_markers = [re.compile(p) for p in params.end_markers]
        self.teaser = re.compile(params.teaser)
        self.sentence_end = re.compile(params.sentence_end)
        self.date = re.compile(params.date_pattern)

    def clean(self, doc: Document, stats: Counter) -> Iterator[tuple[int, RawParagraph, str]]:
        """Yield (paragraph index, raw paragraph, normalised text) of the article body."""
        pending: deque[tuple[int, RawParagraph, str]] = deque()
        body_started = False
        for index, para in enumerate(doc.paragraphs):
            if index == 0 and doc.date is None:
                match = self.date.match(para.text)
                if match:
                    doc.date = match.group(1)
                    para = RawParagraph(para.text[match.end():], para.start + match.end(), para.end, para.line)
            text = normalize(para.text)
            if not text:
                continue
            if body_started and any(p.search(text) for p in self.end_markers):
                stats["end_marker"] += 1
                break
            if any(p.search(text) for p in self.navigation):
                stats["navigation"] += 1
                continue
            if any(p.search(text) for p in self.credits):
                stats["caption"] += 1
                if len(text.split()) < self.params.min_words:
                    # A bare credit line: the paragraphs just before it are its caption.
                    for _ in range(min(self.params.caption_lookback, len(pending))):
                        pending.pop()
                        stats["caption"] += 1
                continue
            if self.teaser.search(text):
                stats["teaser"] += 1
                continue
            if len(text.split()) < self.params.min_words or not self.sentence_end.search(text):
                stats["not_prose"] += 1
                continue
            body_started = True
            pending.append((index, para, text))
            while len(pending) > self.params.caption_lookback:
                yield pending.popleft()
        yield from pending


# --------------------------------------------------------------------------- stage

SOURCE_FIELDS = ("doc_id", "path", "paragraph_index", "char_start", "char_end", "date")
DROP_REASONS = ("navigation", "caption", "teaser", "not_prose", "end_marker")


def document_passages(doc: Document, cleaner: Cleaner, stats: Counter) -> Iterator[tuple[str, str, tuple]]:
    """Yield (passage id, normalised text, source tuple in SOURCE_FIELDS order) of each paragraph the
    cleaner keeps, in document order (streamed); InputError at the end when none was kept. Both ingest
    engines call this per document."""
    kept = 0
    for index, para, text in cleaner.clean(doc, stats):
        kept += 1
        yield passage_id(text), text, (doc.doc_id, doc.path, index, para.start, para.end, doc.date)
    if not kept:
        raise InputError(f"{doc.path}: no paragraphs left after cleaning (is it empty or all boilerplate?)")


def passage_record(pid: str, text: str, meta: dict, sources: Sequence[Sequence], cluster_id: str) -> dict:
    """One line of passages.jsonl: the first source's location, every source, the cluster, the document's meta."""
    first = sources[0]
    return {
        "id": pid, "text": text, "doc_id": first[0], "paragraph_index": first[2],
        "char_start": first[3], "char_end": first[4], "date": first[5],
        "sources": [dict(zip(SOURCE_FIELDS, src)) for src in sources],
        "cluster_id": cluster_id, "meta": meta,
    }


def summarize(per_doc: dict[str, int], passages: int, exact_duplicates: int, near_duplicates: int, clusters: int,
              stats: Counter) -> dict:
    """The ingest report (metrics/ingest.json)."""
    return {
        "documents": len(per_doc),
        "passages": passages,
        "passages_per_document": per_doc,
        "exact_duplicates_merged": exact_duplicates,
        "near_duplicate_passages": near_duplicates,
        "clusters": clusters,
        "dropped": {k: stats[k] for k in DROP_REASONS},
    }


class SignatureBuffer:
    """Growable uint32 matrix of MinHash signatures (amortised, no per-row objects)."""

    def __init__(self, width: int):
        self._data = np.empty((1024, width), dtype=np.uint32)
        self._n = 0

    def append(self, row: np.ndarray) -> None:
        if self._n == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._n] = row
        self._n += 1

    def array(self) -> np.ndarray:
        return self._data[: self._n]



def run(input_dirs: str | Path | Sequence[str | Path], passages: str | Path, report: str | Path,
        params: IngestParams, seed: int = 0) -> dict:
    """Ingest every document under ``input_dirs`` (one folder or several); write ``passages`` (JSONL)
    and ``report`` (JSON). Raises InputError naming the file (and line) on bad input; nothing is written then.
    """
    input_dirs = [Path(input_dirs)] if isinstance(input_dirs, (str, Path)) else [Path(d) for d in input_dirs]
    passages, report = Path(passages), Path(report)
    for input_dir in input_dirs:
        if not input_dir.is_dir():
            raise InputError(f"{input_dir}: input folder not found")
    cleaner = Cleaner(params)
    hasher = MinHasher(params.dedup.num_perm, params.dedup.shingle_words, seed=seed)
    stats: Counter = Counter()
    per_doc: dict[str, int] = {}
    # Per unique passage we keep only its id and MinHash signature (~100 bytes);
    # text and first source are spooled to disk, so memory does not grow with text size.
    index_of: dict[str, int] = {}
    more_sources: dict[int, list[tuple]] = {}  # sources beyond the first, for exact duplicates
    signatures = SignatureBuffer(params.dedup.num_perm)
    passages.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=passages.parent) as spool:
        for doc in tqdm(read_documents(input_dirs, params.txt_paragraphs), desc="ingest", unit="doc", disable=None):
            kept = 0
            for pid, text, source in document_passages(doc, cleaner, stats):
                kept += 1
                if pid in index_of:
                    stats["exact_duplicate"] += 1
                    more_sources.setdefault(index_of[pid], []).append(source)
                    continue
                index_of[pid] = len(index_of)
                signatures.append(hasher.signature(text))
                spool.write(json.dumps([pid, text, doc.meta, source], ensure_ascii=False) + "\n")
            per_doc[doc.doc_id] = kept
        clusters = cluster(signatures.array(), params.dedup.bands, params.dedup.threshold)
        ids = list(index_of)
        spool.seek(0)
        with atomic_open(passages) as out:
            for i, (line, root) in enumerate(zip(spool, clusters)):
                pid, text, meta, first = json.loads(line)
                record = passage_record(pid, text, meta, [first, *more_sources.get(i, ())], ids[root])
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    near_dup = sum(1 for i, root in enumerate(clusters) if root != i)
    summary = summarize(per_doc, len(ids), stats["exact_duplicate"], near_dup, len(set(clusters)), stats)
    write_json(report, summary)
    log.info("ingest: %d documents → %d passages (%d exact duplicates merged, %d near-duplicates clustered)",
             summary["documents"], summary["passages"], summary["exact_duplicates_merged"], near_dup)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("--input-dir", action="append", help="a document folder (repeatable); overrides ingest.input_dirs")
    parser.add_argument("--passages", default="data/passages.jsonl")
    parser.add_argument("--report", default="metrics/ingest.json")
    parser.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="local (default; what dvc repro runs) or spark (pipeline.spark.ingest: the same records)")
    parser.add_argument("--master", help="Spark master URL for --engine spark (default: spark-submit's, else spark.master)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    input_dirs = args.input_dir or params.ingest.input_dirs
    if args.engine == "spark":
        from pipeline.spark import ingest as spark_ingest

        spark_ingest.run(input_dirs, args.passages, args.report, params.ingest, params.seed, params.spark, args.master)
        return
    if args.master:
        parser.error("--master needs --engine spark")
    run(input_dirs, args.passages, args.report, params.ingest, params.seed)
