"""Landing and archive roots on object storage (`s3://bucket/prefix`, `gs://...`) via fsspec.

A root is object storage when it is a URL whose scheme fsspec knows (other than `file`).
The command line and the settings hand roots on as `Path`, which folds `s3://b/p` into
`s3:/b/p`; `object_storage_url` reads either spelling back as the URL, so no caller has to
carry a second type. Credentials and the endpoint come from the storage's own
configuration (for S3: the AWS environment variables or files, `AWS_ENDPOINT_URL` for an
S3-compatible server), never from creditbooks.

Everything that reads a file reads a local copy: a landing day is downloaded whole into a
directory of this process before it is read (so it is read, checked and fingerprinted
exactly as a local landing day is), and an archive partition is downloaded once, checked
against the SHA-256 its batch recorded, and kept under its SHA-256 (content-addressed, so
a copy can never stand for other bytes). The copies live in one temporary directory per
process, removed when the process exits.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from datetime import date
from functools import cache
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]+):/{1,2}(?P<rest>[^/].*)$")
_LOCAL_SCHEMES = {"file", "local"}


def object_storage_url(root: str | Path) -> str | None:
    """`s3://bucket/prefix` for a root on object storage (written `s3://` or folded by
    Path into `s3:/`), None for a local path."""
    match = _URL.match(str(root))
    if match is None or match["scheme"] in _LOCAL_SCHEMES:
        return None
    if match["scheme"] not in fsspec.available_protocols():
        return None
    return f"{match['scheme']}://{match['rest'].rstrip('/')}"


def file_system(url: str):
    """The fsspec file system of `url` and the path within it."""
    return url_to_fs(url)


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
