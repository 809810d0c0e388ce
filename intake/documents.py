"""The file contract: which landing documents exist, their columns, and how files are read.

A landing day `LANDING/YYYY-MM-DD/` holds at most one file per document, named
`purchases.*`, `usage.*`, `costs.*`, `refunds.*`, `adjustments.*` or `fx_rates.*`, with
the extension `.csv` (header row), `.parquet` or `.jsonl`, and markers named `_*`; any
other file refuses the day. Every
file is read into a frame of strings (missing values as ''), so validation sees exactly
what was written and no number ever passes through a float. A file that cannot be read
as a whole raises `InputFileError` naming the file, row and column; row-level problems
are left to validation.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EXTENSIONS = (".csv", ".parquet", ".jsonl")
ROW_NUMBER = "_row_number"
MARKER_PREFIX = "_"

_IDENTIFIER = r"[^\x00-\x1f\x7f]{1,200}"
_DECIMAL = r"[0-9]+(?:\.[0-9]+)?"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    required: bool
    pattern: str
    message: str
    default: str = ""


def _identifier(name: str) -> ColumnSpec:
    return ColumnSpec(name, True, _IDENTIFIER, "must be 1 to 200 printable characters")


def _timestamp(name: str, required: bool = True) -> ColumnSpec:
    pattern = r"[0-9]{4}-.+" if required else r"(?:[0-9]{4}-.+)?"
    return ColumnSpec(name, required, pattern, "must be an ISO 8601 timestamp")


def _decimal(name: str, required: bool = True, what: str = "a non-negative decimal") -> ColumnSpec:
    pattern = _DECIMAL if required else f"(?:{_DECIMAL})?"
    return ColumnSpec(name, required, pattern, f"must be {what}", "" if required else "0")


DOCUMENT_COLUMNS: dict[str, tuple[ColumnSpec, ...]] = {
    "purchases": (
        _identifier("purchase_id"),
        _identifier("customer_id"),
        _timestamp("purchased_at"),
        _decimal("credits", what="a positive decimal number of credits"),
        _decimal("amount", what="a non-negative decimal amount in major units"),
        ColumnSpec("currency", True, r"[A-Z]{3}", "must be a three-letter ISO 4217 code"),
        _decimal("tax_amount", required=False, what="a non-negative decimal amount"),
        _timestamp("expires_at", required=False),
        ColumnSpec("kind", False, r"(?:paid|promotional)?", "must be paid or promotional", "paid"),
        ColumnSpec("product", False, f"(?:{_IDENTIFIER})?", "must be printable", "default"),
        ColumnSpec("priority", False, r"(?:-?[0-9]{1,9})?", "must be an integer", "0"),
        ColumnSpec("country", False, r"(?:[A-Z]{2})?",
                   "must be a two-letter ISO 3166-1 country code"),
    ),
    "usage": (
        _identifier("event_id"),
        _identifier("customer_id"),
        _timestamp("occurred_at"),
        _identifier("meter"),
        _decimal("credits", what="a positive decimal number of credits"),
        _decimal("quantity", required=False, what="a non-negative decimal quantity"),
    ),
    "costs": (
        _identifier("cost_id"),
        ColumnSpec("date", True, r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "must be a date YYYY-MM-DD"),
        ColumnSpec("meter", True, _IDENTIFIER, "must be a meter, or * for all meters"),
        _decimal("amount", what="a non-negative decimal amount in major units"),
        ColumnSpec("currency", True, r"[A-Z]{3}", "must be a three-letter ISO 4217 code"),
        ColumnSpec("cost_type", True, r"variable|fixed", "must be variable or fixed"),
        _identifier("vendor"),
        ColumnSpec("memo", False, f"(?:{_IDENTIFIER})?", "must be printable"),
    ),
    "refunds": (
        _identifier("refund_id"),
        _identifier("purchase_id"),
        _timestamp("refunded_at"),
        _decimal("credits", what="a positive decimal number of credits"),
        # Optional: when given, it must equal the refund the books compute (value + tax).
        ColumnSpec("amount", False, f"(?:{_DECIMAL})?",
                   "must be a non-negative decimal amount in major units"),
    ),
    "fx_rates": (
        ColumnSpec("date", True, r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "must be a date YYYY-MM-DD"),
        ColumnSpec("currency", True, r"[A-Z]{3}", "must be a three-letter ISO 4217 code"),
        _decimal("rate_to_functional",
                 what="a positive decimal: functional currency per unit of the currency"),
    ),
    "adjustments": (
        _identifier("adjustment_id"),
        _identifier("purchase_id"),
        _timestamp("adjusted_at"),
        ColumnSpec("action", True, r"rollover|void", "must be rollover or void"),
        _timestamp("new_expires_at", required=False),
        ColumnSpec("reason", False, f"(?:{_IDENTIFIER})?", "must be printable"),
    ),
}
DOCUMENTS = tuple(DOCUMENT_COLUMNS)


class InputFileError(ValueError):
    """A whole file cannot be read; nothing of the batch is posted."""


@dataclass(frozen=True)
class InputFile:
    document: str
    path: Path
    sha256: str
    frame: pd.DataFrame

    @property
    def file_name(self) -> str:
        return self.path.name


def document_files(day_directory: Path) -> dict[str, Path]:
    """The day's file per document; anything else in the directory is refused, not ignored.

    A misnamed file (`usage.CSV`, `usage.csv.bak`) would otherwise be silently left out
    of the books, and a link could read a file from anywhere on the machine. Names
    starting with `_` are the upstream's markers (`_SUCCESS`), as in Hadoop and Spark.
    """
    expected = {f"{document}{extension}": document
                for document in DOCUMENTS for extension in EXTENSIONS}
    found: dict[str, list[Path]] = {}
    for path in sorted(day_directory.iterdir()):
        if path.name.startswith(MARKER_PREFIX) and path.is_file() and not path.is_symlink():
            continue
        if path.name not in expected:
            raise InputFileError(
                f"{day_directory}: unexpected file {path.name!r}; a landing day holds only "
                f"{', '.join(DOCUMENTS)} files ending {', '.join(EXTENSIONS)}")
        if path.is_symlink() or not path.is_file():
            raise InputFileError(f"{day_directory}: {path.name} is not a regular file "
                                 "(links and directories are not read)")
        found.setdefault(expected[path.name], []).append(path)
    for document, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(path.name for path in paths)
            raise InputFileError(f"{day_directory}: more than one {document} file ({names}); "
                                 "keep one")
    return {document: found[document][0] for document in DOCUMENTS if document in found}


@dataclass(frozen=True)
class StreamedFile:
    """A landing file too large to hold at once: fingerprinted now, read in chunks later."""

    document: str
    path: Path
    sha256: str
    chunk_rows: int
    rows_estimate: int  # from the Parquet footer, or the lines of a text file

    @property
    def file_name(self) -> str:
        return self.path.name

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Frames of at most `chunk_rows` rows, conformed as `read_document` conforms a file.

        Row numbers run on across chunks; a file-level error names the row it reached.
        """
        first_row = 1
        for frame in _chunk_readers[self.path.suffix](self.path, self.chunk_rows):
            conformed = _conformed(self.document, self.path.name, frame, first_row)
            first_row += len(conformed)
            yield conformed


def read_document(document: str, path: Path) -> InputFile:
    """Read one landing file into strings, check its columns, and fingerprint it."""
    return _read_whole(document, path, _fingerprint(path)[0])


def open_document(document: str, path: Path, chunk_rows: int) -> InputFile | StreamedFile:
    """A file of at most `chunk_rows` rows read now; a larger one fingerprinted, to stream.

    Rows are counted from a Parquet footer, or as the lines of a text file (counted while
    fingerprinting, so at no extra read): an estimate that decides only how the file is
    read, never what is accepted.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    digest, lines = _fingerprint(path)
    if path.suffix == ".parquet":
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as error:
            raise InputFileError(f"{path.name}: not a readable Parquet file: {error}") from None
    else:
        rows = lines - (path.suffix == ".csv")
    if rows <= chunk_rows:
        return _read_whole(document, path, digest)
    return StreamedFile(document, path, digest, chunk_rows, rows)


def _read_whole(document: str, path: Path, digest: str) -> InputFile:
    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}
    frame = _conformed(document, path.name, readers[path.suffix](path), 1)
    return InputFile(document, path, digest, frame)


def _fingerprint(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and its number of line ends; an empty file is refused."""
    digest, lines = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            lines += block.count(b"\n")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path.name}: the file is empty (expected at least a header row)")
    return digest.hexdigest(), lines


def _conformed(document: str, file_name: str, frame: pd.DataFrame, first_row: int) -> pd.DataFrame:
    """The document's columns in order (optional ones filled with ''), numbered from first_row."""
    _check_columns(document, file_name, list(frame.columns))
    for spec in DOCUMENT_COLUMNS[document]:
        if spec.name not in frame.columns:
            frame[spec.name] = ""
    frame = frame[[spec.name for spec in DOCUMENT_COLUMNS[document]]].copy()
    frame.insert(0, ROW_NUMBER, range(first_row, first_row + len(frame)))
    return frame.reset_index(drop=True)


def _check_columns(document: str, file_name: str, columns: list[str]) -> None:
    specs = DOCUMENT_COLUMNS[document]
    known = {spec.name for spec in specs}
    duplicated = sorted({column for column in columns if columns.count(column) > 1})
    if duplicated:
        raise InputFileError(f"{file_name} row 0 (header): column {duplicated[0]!r} appears twice")
    unexpected = [column for column in columns if column not in known]
    if unexpected:
        close = difflib.get_close_matches(unexpected[0], sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputFileError(
            f"{file_name} row 0 (header): unexpected column {unexpected[0]!r}{hint}; "
            f"{document} files have columns {', '.join(spec.name for spec in specs)}"
        )
    missing = [spec.name for spec in specs if spec.required and spec.name not in columns]
    if missing:
        raise InputFileError(
            f"{file_name} row 0 (header): required column {missing[0]!r} is missing"
        )


def _read_csv(path: Path) -> pd.DataFrame:
    return next(_csv_chunks(path, None))


def _csv_chunks(path: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        header = _csv_header(path) if chunk_rows else None
        read = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                           encoding="utf-8-sig", chunksize=chunk_rows)
        read_any = False
        for frame in ([read] if chunk_rows is None else read):
            read_any = True
            frame.columns = header or _csv_header(path)
            yield frame
        if not read_any:  # a header and no rows
            yield pd.DataFrame({column: pd.Series(dtype=str) for column in header})
    except UnicodeDecodeError:
        raise InputFileError(_not_utf8(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputFileError(f"{path.name}: not a readable CSV file: {error}".strip()) from None


def _csv_header(path: Path) -> list[str]:
    """The header as written (pandas would rename a repeated column to `name.1`)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [column.strip() for column in next(csv.reader(handle))]


def _not_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 is: its line (row 0 is a CSV header) and offset."""
    content = path.read_bytes()
    try:
        content.decode("utf-8")
        offset = 0
    except UnicodeDecodeError as error:
        offset = error.start
    line = content.count(b"\n", 0, offset) + (0 if path.suffix == ".csv" else 1)
    return (f"{path.name} row {line}: not UTF-8 text (byte {content[offset]:#04x} at offset "
            f"{offset}); save the file as UTF-8")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open("r", encoding="utf-8-sig", errors="strict") as handle:
        try:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line, parse_float=str, parse_int=str)
                except json.JSONDecodeError as error:
                    raise InputFileError(
                        f"{path.name} row {line_number}: not valid JSON ({error.msg})"
                    ) from None
                if not isinstance(record, dict):
                    raise InputFileError(f"{path.name} row {line_number}: not a JSON object")
                records.append({key: _json_text(path.name, line_number, key, value)
                                for key, value in record.items()})
        except UnicodeDecodeError:
            raise InputFileError(_not_utf8(path)) from None
    columns = list(dict.fromkeys(key for record in records for key in record))
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.fillna("").astype(str) if len(columns) else frame


def _json_text(file_name: str, line_number: int, key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise InputFileError(
            f"{file_name} row {line_number} column {key}: expected a string or number"
        )
    return str(value)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputFileError(f"{path.name}: not a readable Parquet file: {error}") from None
    return _parquet_text(path, table)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        batches = parquet.iter_batches(batch_size=chunk_rows)
        read_any = False
        for batch in batches:
            read_any = True
            yield _parquet_text(path, pa.Table.from_batches([batch]))
        if not read_any:
            yield _parquet_text(path, schema.empty_table())
    except (pa.ArrowInvalid, OSError) as error:
        raise InputFileError(f"{path.name}: not a readable Parquet file: {error}") from None


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """JSON lines are a small-file format: read whole, then handed out in chunks."""
    frame = _read_jsonl(path)
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start:start + chunk_rows]


def _parquet_text(path: Path, table: pa.Table) -> pd.DataFrame:
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(column.type):
            raise InputFileError(
                f"{path.name} column {name}: floating-point numbers are not exact; "
                "write decimals or strings"
            )
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            # An instant as ISO 8601 in UTC; a timestamp without a zone stays as written
            # (no offset), and validation refuses it like any time without an offset.
            # Arrow's zone-aware formatting is several times slower than this, which gives
            # the same text: the UTC wall time, "T", and "Z".
            wall_time = column.cast(pa.timestamp(column.type.unit, "UTC")).cast(
                pa.timestamp(column.type.unit)).cast(pa.string())
            column = pc.binary_join_element_wise(
                pc.replace_substring(wall_time, " ", "T", max_replacements=1), "Z", "")
        text = column.cast(pa.string()).fill_null("")
        columns[name] = text.to_pandas()
    return pd.DataFrame(columns)


_chunk_readers = {".csv": _csv_chunks, ".parquet": _parquet_chunks, ".jsonl": _jsonl_chunks}
