"""Text normalisation shared by ingest, training and serving."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")
# Control characters (Cc) other than whitespace, plus zero-width and BOM marks.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")


def normalize(text: str) -> str:
    """NFKC, drop control and zero-width characters, collapse whitespace, strip.

    Idempotent: ``normalize(normalize(t)) == normalize(t)``.
    """
    # Removing a zero-width character can let NFKC compose what it separated,
    # so iterate to a fixed point (two rounds in practice).
    for _ in range(4):
        cleaned = _SPACE.sub(" ", _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))).strip()
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


def model_text(text: str) -> str:
    """What models see: ``normalize`` plus typographic quotes and dashes folded to ASCII.

    Kept apart from ``normalize`` because passage ids hash the normalised text,
    and annotations refer to passages by id.
    """
    return normalize(text).translate(_FOLD)
