"""`framing labelstudio adjudicate --review FILE`: the list of passages to re-review after a guideline revision."""

from __future__ import annotations

import pytest

from pipeline.errors import InputError
from pipeline.labelstudio.adjudication import read_review_ids

PASSAGES = {"p1": {"id": "p1"}, "p2": {"id": "p2"}, "p3": {"id": "p3"}}


def test_ids_come_in_file_order_without_comments_or_blank_lines(tmp_path):
    listing = tmp_path / "review.txt"
    listing.write_text("# Hard case 4 revised\np3\n\n  p1  # munitions, no return\n", encoding="utf-8")
    assert read_review_ids(listing, PASSAGES) == ["p3", "p1"]


@pytest.mark.parametrize("text, message", [
    ("p1\nnope\n", r"review.txt:2: 'nope' is not a passage"),
    ("p1\np2\np1\n", r"review.txt:3: 'p1' is listed twice \(first on line 1\)"),
])
def test_a_bad_line_is_named(tmp_path, text, message):
    listing = tmp_path / "review.txt"
    listing.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_review_ids(listing, PASSAGES)


def test_a_missing_list_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="review list not found"):
        read_review_ids(tmp_path / "absent.txt", PASSAGES)
