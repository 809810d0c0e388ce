"""Helpers to write landing days for tests in any of the three file formats."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def write_document(landing: Path, business_date: str, document: str, rows: list[dict],
                   file_format: str = "csv") -> Path:
    directory = landing / business_date
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{document}.{file_format}"
    frame = pd.DataFrame(rows).astype(str)
    if file_format == "csv":
        frame.to_csv(path, index=False)
    elif file_format == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif file_format == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(file_format)
    return path
