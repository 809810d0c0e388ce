"""The file contract: which landing documents exist, their columns, and how files are read.

A landing day `LANDING/YYYY-MM-DD/` holds at most one file per document, named
`purchases.*`, `usage.*`, `costs.*`, `refunds.*`, `adjustments.*` or `fx_rates.*`, with
the extension `.csv` (header row), `.parquet` or `.jsonl`, and markers named `_*`; any
other file refuses the day. Every
file is read into a frame of strings (missing values as ''), so validation sees exactly
what was written and no number ever passes through a float. A file that cannot be read
as a whole raises `InputFileError` naming the file, row and column; row-level problems
are left to validation.

Read to the byte: a CSV row with more or fewer fields than the header, a JSON object
with a key twice, a nested object or list where a value belongs, `NaN` in JSON, a lone
surrogate, and text that is not UTF-8 (in any format) refuse the file. Nothing is
dropped, shifted or repaired on the way in.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

EXTENSIONS = (".csv", ".parquet", ".jsonl")
ROW_NUMBER = "_row_number"
MARKER_PREFIX = "_"

IDENTIFIER_MAX_CHARACTERS = 200
_PRINTABLE_TEXT = r"[^\x00-\x1f\x7f]{1,200}"
_DECIMAL = r"[0-9]+(?:\.[0-9]+)?"


@dataclass(frozen=True)
class ColumnSpec:
    """A column: required or not, and the whole value's format (a regular expression that
    must match all of it), or the identifier rule (`identifier`, see intake/validation.py)."""

    name: str
    required: bool
    pattern: str
    message: str
    default: str = ""
    identifier: bool = False


def _identifier(name: str, required: bool = True, default: str = "") -> ColumnSpec:
    """An id or key: printable, no surrounding whitespace, NFC, at most 200 characters."""
    return ColumnSpec(name, required, "", "", default, identifier=True)


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
        _identifier("product", required=False, default="default"),
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
        _identifier("meter"),  # or * for all meters
        _decimal("amount", what="a non-negative decimal amount in major units"),
        ColumnSpec("currency", True, r"[A-Z]{3}", "must be a three-letter ISO 4217 code"),
        ColumnSpec("cost_type", True, r"variable|fixed", "must be variable or fixed"),
        _identifier("vendor"),
        ColumnSpec("memo", False, f"(?:{_PRINTABLE_TEXT})?", "must be printable"),
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
        ColumnSpec("reason", False, f"(?:{_PRINTABLE_TEXT})?", "must be printable"),
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


# A CSV row may be at most this long: far more than any landing row needs (the corpus
# holds one of 20 MB), and a quote never closed stops the read instead of eating the file.
CSV_ROW_MAX_BYTES = 1 << 26


def _read_csv(path: Path) -> pd.DataFrame:
    return next(_csv_chunks(path, None))


def _csv_chunks(path: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The rows as text, `chunk_rows` at a time (None: all at once), columns named by the header.

    Arrow's reader is strict where pandas' is loose: a row with more or fewer fields than
    the header stops the read (pandas would take a first column as the index, drop an
    extra field, or pad a short row), and every column is read as text, nothing inferred.
    """
    try:
        header = _csv_header(path)
    except UnicodeDecodeError:
        raise InputFileError(_not_utf8(path)) from None
    if not header:
        yield pd.DataFrame()
        return
    wrong_length: list[pa_csv.InvalidRow] = []

    def refuse(row: pa_csv.InvalidRow) -> str:  # called by Arrow for a row of the wrong length
        wrong_length.append(row)
        return "error"

    field_names = [f"field {number}" for number in range(len(header))]
    options = {
        "read_options": pa_csv.ReadOptions(use_threads=False, block_size=CSV_ROW_MAX_BYTES,
                                           skip_rows=1, column_names=field_names),
        "parse_options": pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=refuse),
        "convert_options": pa_csv.ConvertOptions(
            column_types=dict.fromkeys(field_names, pa.string()), null_values=[],
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    }
    try:
        for table in _csv_tables(path, chunk_rows, options):
            yield table.rename_columns(header).to_pandas()
    except pa.ArrowInvalid as error:
        raise InputFileError(_csv_problem(path, error, wrong_length)) from None


def _csv_tables(path: Path, chunk_rows: int | None, options: dict) -> Iterator[pa.Table]:
    """Tables of `chunk_rows` rows (the last may have fewer; a file with no rows gives one
    empty table), or the whole file as one table."""
    if chunk_rows is None:
        yield pa_csv.read_csv(path, **options)
        return
    reader = pa_csv.open_csv(path, **options)
    pending, pending_rows, yielded = [], 0, False
    for batch in reader:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            yield table.slice(0, chunk_rows)
            yielded = True
            rest = table.slice(chunk_rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    if pending_rows or not yielded:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def _csv_problem(path: Path, error: pa.ArrowInvalid, wrong_length: list) -> str:
    """What is wrong with a CSV file Arrow could not read, as one line naming the row."""
    if wrong_length:
        row = wrong_length[0]
        where = f" row {row.number - 1}" if row.number and row.number > 0 else ""
        return (f"{path.name}{where}: {row.actual_columns} field(s) but the header has "
                f"{row.expected_columns}; every row needs exactly one field per column "
                "(a stray or missing comma, or an unquoted comma in a value?)")
    if "invalid UTF8" in str(error):
        return _not_utf8(path)
    if "straddl" in str(error):
        return (f"{path.name}: a row is longer than {CSV_ROW_MAX_BYTES >> 20} MiB, or a quoted "
                "field is never closed")
    return f"{path.name}: not a readable CSV file: {error}".strip()


def _csv_header(path: Path) -> list[str]:
    """The header as written (pandas would rename a repeated column to `name.1`)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [column.strip() for column in next(csv.reader(handle), [])]


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


class JsonProblem(ValueError):
    """Raised from json.loads' hooks; the reader adds the file and row."""


def _object_with_unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refused if a key appears twice (json.loads would keep the last)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise JsonProblem(f"key {repeated!r} appears more than once in the object; keep one")
    return record


def _no_constant(name: str) -> None:
    raise JsonProblem(f"{name} is not a JSON number; write the value as a decimal or a string")


# Past this many places either side of the point a number is past every bound the books
# hold (or finer than every column's places), so its exact text would only cost memory.
_EXPONENT_FORM_DIGITS_MAX = 40


def _number_text(text: str) -> str:
    """A JSON number with a fraction or an exponent as exact decimal text: `1e-05` is
    `0.00001`, `1.5e1` is `15` (Decimal of the JSON text is exact), so the usual limits
    of places and size name what is wrong with it, not its form."""
    if "e" not in text and "E" not in text:
        return text
    number = Decimal(text)
    sign = "-" if number.is_signed() else ""
    if number.is_zero():
        return "0"
    if number.adjusted() > _EXPONENT_FORM_DIGITS_MAX:  # refused as too large either way
        return sign + "1" + "0" * (_EXPONENT_FORM_DIGITS_MAX + 1)
    if number.adjusted() < -_EXPONENT_FORM_DIGITS_MAX:  # refused as too many places
        return sign + "0." + "0" * _EXPONENT_FORM_DIGITS_MAX + "1"
    return f"{number.normalize():f}" if number == number.to_integral_value() else f"{number:f}"


def parse_json(text: str):
    """JSON as every intake reader parses it: numbers kept as their exact decimal text
    (never a float; exponent form written out: `_number_text`); NaN, Infinity and a key
    twice in one object raise JsonProblem."""
    return json.loads(text, parse_float=_number_text, parse_int=str,
                      parse_constant=_no_constant, object_pairs_hook=_object_with_unique_keys)


# A lone surrogate can only arrive as a \uD800-\uDFFF escape (UTF-8 cannot carry one), so
# only a line with such an escape has its values searched.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_lines(path: Path, object_hint: str = "") -> Iterator[tuple[int, dict, str]]:
    """(line number, object, line) for each non-blank line of a JSON lines file, read as it
    is consumed. A line that is not one JSON object, or bytes that are not UTF-8, refuse the
    file naming the row; `object_hint` says in brackets what a line should hold."""
    not_an_object = f"not a JSON object ({object_hint})" if object_hint else "not a JSON object"
    with path.open("r", encoding="utf-8-sig", errors="strict") as handle:
        try:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = parse_json(line)
                except json.JSONDecodeError as error:
                    raise InputFileError(
                        f"{path.name} row {line_number}: not valid JSON ({error.msg})"
                    ) from None
                except JsonProblem as problem:
                    raise InputFileError(f"{path.name} row {line_number}: {problem}") from None
                if not isinstance(record, dict):
                    raise InputFileError(f"{path.name} row {line_number}: {not_an_object}")
                yield line_number, record, line
        except UnicodeDecodeError:
            raise InputFileError(_not_utf8(path)) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    for line_number, record, line in json_lines(path):
        if SURROGATE_ESCAPE.search(line):
            refuse_surrogates(path.name, line_number, record)
        records.append({key: _json_text(path.name, line_number, key, value)
                        for key, value in record.items()})
    columns = list(dict.fromkeys(key for record in records for key in record))
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.fillna("").astype(str) if len(columns) else frame


def refuse_surrogates(file_name: str, line_number: int, record: dict) -> None:
    """Refuses a record holding a lone surrogate in a key or a value, naming row and column."""
    for key, value in record.items():
        for text in (key, value):
            found = _SURROGATE.search(text) if isinstance(text, str) else None
            if found:
                shown = ascii(key) if _SURROGATE.search(key) else key
                raise InputFileError(
                    f"{file_name} row {line_number} column {shown}: a lone surrogate "
                    f"(U+{ord(found.group()):04X}) is not a character; write the text as UTF-8")


def _json_text(file_name: str, line_number: int, key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        kind = {dict: "an object", list: "a list", bool: "true or false"}[type(value)]
        raise InputFileError(
            f"{file_name} row {line_number} column {key}: expected a string or a number, "
            f"not {kind}"
        )
    return str(value)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputFileError(f"{path.name}: not a readable Parquet file: {error}") from None
    return _parquet_text(path, table, 1)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        batches = parquet.iter_batches(batch_size=chunk_rows)
        first_row = 1
        for batch in batches:
            yield _parquet_text(path, pa.Table.from_batches([batch]), first_row)
            first_row += batch.num_rows
        if first_row == 1:
            yield _parquet_text(path, schema.empty_table(), 1)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputFileError(f"{path.name}: not a readable Parquet file: {error}") from None


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """JSON lines are a small-file format: read whole, then handed out in chunks."""
    frame = _read_jsonl(path)
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start:start + chunk_rows]


def _parquet_text(path: Path, table: pa.Table, first_row: int) -> pd.DataFrame:
    """Each column as text; rows are numbered from `first_row` in what it names."""
    return pd.DataFrame({
        name: _parquet_column_text(path.name, name, column, first_row).to_pandas()
        for name, column in zip(table.column_names, table.columns, strict=True)})


def _parquet_column_text(file_name: str, name: str, column: pa.ChunkedArray,
                         first_row: int) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_nested(column.type):
        raise InputFileError(
            f"{file_name} column {name}: holds {column.type} values (lists or records) where "
            "one value per row belongs; write a string, decimal or timestamp column")
    if pa.types.is_floating(column.type):
        raise InputFileError(
            f"{file_name} column {name}: floating-point numbers are not exact; "
            "write decimals or strings"
        )
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        text_type = pa.string() if pa.types.is_binary(column.type) else pa.large_string()
        column = pa.chunked_array([chunk.view(text_type) for chunk in column.chunks], text_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        _require_utf8(file_name, name, column, first_row)
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # An instant as ISO 8601 in UTC; a timestamp without a zone stays as written
        # (no offset), and validation refuses it like any time without an offset.
        # Arrow's zone-aware formatting is several times slower than this, which gives
        # the same text: the UTC wall time, "T", and "Z".
        wall_time = column.cast(pa.timestamp(column.type.unit, "UTC")).cast(
            pa.timestamp(column.type.unit)).cast(pa.string())
        column = pc.binary_join_element_wise(
            pc.replace_substring(wall_time, " ", "T", max_replacements=1), "Z", "")
    try:
        return column.cast(pa.string()).fill_null("")
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        raise InputFileError(
            f"{file_name} column {name}: {column.type} values cannot be read as text; "
            "write strings, decimals or timestamps") from None


def _require_utf8(file_name: str, name: str, column: pa.ChunkedArray, first_row: int) -> None:
    """Parquet readers do not check that text is UTF-8; Arrow's full validation does."""
    row = first_row
    for chunk in column.chunks:
        try:
            chunk.validate(full=True)
        except pa.ArrowInvalid as error:
            index = re.search(r"string index ([0-9]+)", str(error))
            where = f" row {row + int(index.group(1))}" if index else ""
            raise InputFileError(f"{file_name}{where} column {name}: not UTF-8 text; write "
                                 "text columns as UTF-8") from None
        row += len(chunk)


_chunk_readers = {".csv": _csv_chunks, ".parquet": _parquet_chunks, ".jsonl": _jsonl_chunks}
