"""Which roots are on object storage (`s3://bucket/prefix`, `gs://...`), and their fsspec
file system: the one test every layer uses (the archive and landing in intake/, the anchor
prefix and archive adoption here in ledger/).

A root is object storage when it is a URL whose scheme fsspec knows (other than `file`).
The command line and the settings hand roots on as `Path`, which folds `s3://b/p` into
`s3:/b/p`; `object_storage_url` reads either spelling back as the URL, so no caller has to
carry a second type. Credentials and the endpoint come from the storage's own
configuration (for S3: the AWS environment variables or files, `AWS_ENDPOINT_URL` for an
S3-compatible server), never from creditbooks.
"""

from __future__ import annotations

import re
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


def storage_failure(error: BaseException) -> str | None:
    """One line for a failure of the object storage itself (an endpoint that does not
    answer, no credentials), naming the endpoint URL and the cause; None for any other
    error. Read lazily: botocore is only there when S3 is."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return None
    if not isinstance(error, BotoCoreError):
        return None
    endpoint = getattr(error, "kwargs", {}).get("endpoint_url")
    cause = getattr(error, "kwargs", {}).get("error")
    what = (f'could not connect to the endpoint URL "{endpoint}"' if endpoint
            else str(error))
    because = f" ({cause})" if cause is not None else ""
    line = (f"object storage: {what}{because}; check AWS_ENDPOINT_URL (or the storage's "
            "settings) and that the storage answers")
    return " ".join(line.split())
