"""Text normalisation shared by ingest, training and serving."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Control characters (Cc) other than whitespace, plus zero-width and BOM marks.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def find_surrogate(text: str) -> str | None:
    """The first surrogate code point in ``text`` (never part of valid Unicode text), or None."""
    found = _SURROGATE.search(text)
    return found.group() if found else None


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD; a surrogate pair becomes the character it encodes.

    A Python ``str`` can hold code points that are not Unicode scalar values (JSON's ``"\\ud800"``
    escape, ``surrogateescape``-decoded bytes): they cannot be encoded as UTF-8, so no tokenizer,
    hash or file accepts them. U+FFFD is what a UTF-8 decoder puts in place of bytes it cannot
    read, so the text stays as long as it was where it was damaged. Text without surrogates, i.e.
    anything read from a file or a valid JSON document, comes back unchanged (same object).
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def normalize(text: str) -> str:
    """Valid unicode (``valid_unicode``), NFKC, drop control and zero-width characters, collapse whitespace, strip.

    Idempotent: ``normalize(normalize(t)) == normalize(t)``. Defined for every ``str``; its result
    always encodes as UTF-8. Passage ids of surrogate-free text are what they always were.
    """
    text = valid_unicode(text)
    # Removing a zero-width character can let NFKC compose what it separated,
    # so iterate to a fixed point (two rounds in practice).
    for _ in range(4):
        # str.split() splits at exactly the characters \s matches (both Py_UNICODE_ISSPACE) and
        # drops the ends: the same as collapsing runs of \s to one space and stripping, 3× faster.
        cleaned = " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).split())
        if cleaned == text:
            break
        text = cleaned
    return text


def passage_id(normalized_text: str) -> str:
    """Stable id of a passage: first 16 hex digits of SHA-256 of its normalised text."""
    return hashlib.sha256(normalized_text.encode("utf-8")).hexdigest()[:16]


# Typographic quotes and dashes vary by outlet, not by meaning.
_FOLD = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
                       "″": '"', "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-"})
_FOLDABLE = re.compile("[%s]" % re.escape("".join(map(chr, _FOLD))))


def model_text(text: str) -> str:
    """What models see: ``normalize`` plus typographic quotes and dashes folded to ASCII.

    Kept apart from ``normalize`` because passage ids hash the normalised text,
    and annotations refer to passages by id.
    """
    text = normalize(text)
    return text.translate(_FOLD) if _FOLDABLE.search(text) else text  # translate copies even when nothing folds
