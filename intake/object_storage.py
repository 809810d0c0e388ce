"""Landing and archive roots on object storage (`s3://bucket/prefix`, `gs://...`) via fsspec.

Which roots are object storage, and their file system, is `ledger/storage_urls.py`
(re-exported here). Everything that reads a file reads a local copy: a landing day is
downloaded whole into a directory of this process before it is read (so it is read,
checked and fingerprinted exactly as a local landing day is), and an archive partition is
downloaded once, checked against the SHA-256 its batch recorded, and kept under its
SHA-256 (content-addressed, so a copy can never stand for other bytes). The copies live
in one temporary directory per process, removed when the process exits.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import date
from functools import cache
from pathlib import Path

from ledger.storage_urls import file_system as file_system
from ledger.storage_urls import object_storage_url as object_storage_url


@cache
def local_copies() -> Path:
    """This process's directory of downloaded copies, removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="creditbooks-object-storage-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def download_landing_day(url: str, business_date: date) -> Path | None:
    """A local landing root holding a copy of the day's directory at `url` (objects as
    files, sub-prefixes as empty directories, so the contract refuses them as it does
    locally); None when the landing itself does not exist."""
    storage, root = file_system(url)
    storage.invalidate_cache()
    if not storage.exists(root):
        return None
    local_root = Path(tempfile.mkdtemp(prefix="landing-", dir=local_copies()))
    day = f"{root}/{business_date.isoformat()}"
    if not storage.isdir(day):
        return local_root
    local_day = local_root / business_date.isoformat()
    local_day.mkdir()
    for entry in storage.ls(day, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] == "directory":
            (local_day / name).mkdir()
        else:
            storage.get_file(entry["name"], str(local_day / name))
    return local_root


def path_exists(path: Path) -> bool:
    """Whether a file or directory exists, locally or on object storage (there, a
    "directory" is a prefix some object is under; read afresh, not from fsspec's cache,
    so a sensor that pokes sees what landed since)."""
    url = object_storage_url(path)
    if url is None:
        return Path(path).exists()
    storage, where = file_system(url)
    storage.invalidate_cache()
    return storage.exists(where)
