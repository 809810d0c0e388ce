"""Rows as delimited text, built a column at a time in Arrow.

The chain (`ledger.chain`) and the period digest (`ledger.digest`, where the database
writes the same text) hash rows written as their fields' text joined by \\x1f and ended
by a newline, a missing value being empty text: exactly
`"\\x1f".join("" if v is None else str(v) for v in row) + "\\n"`; the PostgreSQL bulk
path (`ledger.store`) writes COPY text the same way with tabs. Building
that text per row in Python costs more than reading or writing the rows; here it is one
Arrow kernel per column, and the text of many rows is one contiguous buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELD_SEPARATOR = "\x1f"


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def columns_as_text(rows: list[tuple]) -> list[pa.Array]:
    """Each column of the rows as text (str() of each value; None as empty text)."""
    return [pc.fill_null(pa.array(column).cast(pa.large_string()), "")
            for column in zip(*rows, strict=True)]


def line_text(columns: list[pa.Array], separator: str = FIELD_SEPARATOR) -> pa.Array:
    """Per row: its fields joined by the separator, then a newline."""
    return pc.binary_join_element_wise(
        pc.binary_join_element_wise(*columns, _text(separator)), _text("\n"), _text(""))


def concatenated(first: pa.Array, second: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(first, second, _text(""))


def text_buffer(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, memoryview]:
    """(offsets, data): row i's text is data[offsets[i]:offsets[i + 1]]; rows end to end."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + len(text) + 1]
    return offsets, memoryview(text.buffers()[2])
