"""The file contract: which landing documents exist, their columns, and how files are read.

A landing day `LANDING/YYYY-MM-DD/` holds at most one file per document, named
`purchases.*`, `usage.*`, `costs.*` or `refunds.*` with the extension `.csv` (header row),
`.parquet` or `.jsonl`. Every file is read into a frame of strings (missing values as
''), so validation sees exactly what was written and no number ever passes through a
float. A file that cannot be read as a whole raises `InputFileError` naming the file,
row and column; row-level problems are left to validation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EXTENSIONS = (".csv", ".parquet", ".jsonl")
ROW_NUMBER = "_row_number"

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
        _decimal("amount", what="a non-negative decimal amount in major units"),
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


def find_document_file(day_directory: Path, document: str) -> Path | None:
    candidates = [day_directory / f"{document}{extension}" for extension in EXTENSIONS]
    present = [path for path in candidates if path.is_file()]
    if len(present) > 1:
        names = ", ".join(path.name for path in present)
        raise InputFileError(f"{day_directory}: more than one {document} file ({names}); keep one")
    return present[0] if present else None


def read_document(document: str, path: Path) -> InputFile:
    """Read one landing file into strings, check its columns, and fingerprint it."""
    digest = _sha256_of(path)
    if path.stat().st_size == 0:
        raise InputFileError(f"{path.name}: the file is empty (expected at least a header row)")
    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}
    frame = readers[path.suffix](path)
    _check_columns(document, path.name, list(frame.columns))
    for spec in DOCUMENT_COLUMNS[document]:
        if spec.name not in frame.columns:
            frame[spec.name] = ""
    frame = frame[[spec.name for spec in DOCUMENT_COLUMNS[document]]].copy()
    frame.insert(0, ROW_NUMBER, range(1, len(frame) + 1))
    return InputFile(document, path, digest, frame.reset_index(drop=True))


def _check_columns(document: str, file_name: str, columns: list[str]) -> None:
    specs = DOCUMENT_COLUMNS[document]
    known = {spec.name for spec in specs}
    duplicated = sorted({column for column in columns if columns.count(column) > 1})
    if duplicated:
        raise InputFileError(f"{file_name} row 0 (header): column {duplicated[0]!r} appears twice")
    unexpected = [column for column in columns if column not in known]
    if unexpected:
        raise InputFileError(
            f"{file_name} row 0 (header): unexpected column {unexpected[0]!r}; "
            f"{document} files have columns {', '.join(spec.name for spec in specs)}"
        )
    missing = [spec.name for spec in specs if spec.required and spec.name not in columns]
    if missing:
        raise InputFileError(
            f"{file_name} row 0 (header): required column {missing[0]!r} is missing"
        )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"{path.name}: not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at offset {error.start})"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputFileError(f"{path.name}: not a readable CSV file: {error}".strip()) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


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
        except UnicodeDecodeError as error:
            raise InputFileError(f"{path.name}: not UTF-8 text (offset {error.start})") from None
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
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(column.type):
            raise InputFileError(
                f"{path.name} column {name}: floating-point numbers are not exact; "
                "write decimals or strings"
            )
        text = column.cast(pa.string()).fill_null("")
        columns[name] = text.to_pandas()
    return pd.DataFrame(columns)
