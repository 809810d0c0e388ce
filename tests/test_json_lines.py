"""intake.documents.json_lines: the one reader of JSON lines files, the contract's and Stripe's.

Numbers stay the text they were written as, blank lines are skipped but counted, and a line
that is not one JSON object (or bytes that are not UTF-8) refuses the file naming its row.
"""

from __future__ import annotations

import pytest

from intake.documents import InputFileError, json_lines, open_document
from intake.stripe import StripeMapping, read_stripe_document


def test_each_object_comes_with_its_line_number_and_its_line_as_written(tmp_path):
    path = tmp_path / "usage.jsonl"
    path.write_bytes('\ufeff{"credits": 1.50, "count": 10}\n\n{"meter": "api"}\n'.encode())
    assert list(json_lines(path)) == [
        (1, {"credits": "1.50", "count": "10"}, '{"credits": 1.50, "count": 10}\n'),
        (3, {"meter": "api"}, '{"meter": "api"}\n')]


def test_a_line_that_is_not_one_object_refuses_the_file_naming_its_row(tmp_path):
    path = tmp_path / "purchases.jsonl"
    path.write_text('{"id": "ch_1"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputFileError) as contract:
        open_document("purchases", path, chunk_rows=1000)
    assert str(contract.value) == "purchases.jsonl row 3: not a JSON object"
    with pytest.raises(InputFileError) as stripe:
        read_stripe_document("purchases", path, StripeMapping())
    assert str(stripe.value) == ("purchases.jsonl row 3: not a JSON object (one Stripe object "
                                 "per line)")


def test_broken_json_and_bytes_that_are_not_utf8_are_named_by_row(tmp_path):
    path = tmp_path / "usage.jsonl"
    path.write_text('{"id": "E-1"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(InputFileError) as broken:
        list(json_lines(path))
    assert str(broken.value) == "usage.jsonl row 2: not valid JSON (Expecting value)"
    path.write_bytes(b'{"id": "E-1"}\n{"id": "\xff"}\n')
    with pytest.raises(InputFileError) as not_utf8:
        list(json_lines(path))
    assert str(not_utf8.value) == ("usage.jsonl row 2: not UTF-8 text (byte 0xff at offset 22); "
                                   "save the file as UTF-8")
