"""Where `creditbooks verify` looks for the evidence kept outside the ledger when it is not
told: the places the close and the nightly run write to by default.

The nightly run archives to `--archive`, else $CREDITBOOKS_ARCHIVE, else `./archive`.
The close writes its packages to `--out`, else $CREDITBOOKS_CLOSE_DIR, else `./close`; every
publish and close appends an anchor to `--anchors`, else $CREDITBOOKS_ANCHORS, else
`creditbooks-anchors.jsonl` beside the archive or the close directory, or the prefix
`creditbooks-anchors` beside an archive on object storage (`ledger.anchors`).
Plain `verify` checks those defaults when they are there, and says which it checked and
which it did not find, so a user who types `verify` is not silently given the database's
checks only. A place the user names (option or environment) is always checked: one that is
missing fails verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from intake.object_storage import path_exists
from ledger.anchors import anchor_file
from ledger.storage_urls import object_storage_url

DEFAULT_CLOSE_DIRECTORY = Path("close")
DEFAULT_ARCHIVE_DIRECTORY = Path("archive")  # where `nightly` and `trace` look too


@dataclass(frozen=True)
class EvidencePlaces:
    close_dir: Path | None  # None: not checked
    anchors: Path | None  # None: not checked
    archive: Path | None  # None: not checked
    notes: tuple[str, ...]  # which defaults were checked and which were not found


def evidence_places(close_dir: Path | None, anchors: Path | None,
                    archive: Path | None) -> EvidencePlaces:
    """The close directory, anchor file and archive verify checks: the ones given, else the
    defaults that exist (the anchor file beside the close directory, else beside the
    archive)."""
    notes = []
    if close_dir is None:
        close_dir = _default_directory(DEFAULT_CLOSE_DIRECTORY, "close packages",
                                       "default close directory", "--close-dir", notes)
    if anchors is None:
        beside = [close_dir or DEFAULT_CLOSE_DIRECTORY]
        if archive is not None:  # beside an archive on object storage: nightly's prefix
            beside.append(Path(archive))
        candidates = list(dict.fromkeys(anchor_file(None, place) for place in beside))
        anchors = next((path for path in candidates if _anchors_there(path)), None)
        if anchors is not None:
            notes.append(f"anchors: checked {_shown(anchors)} (the default anchor file)")
        else:
            notes.append(f"anchors: not checked, no {' or '.join(map(_shown, candidates))} "
                         "(the default anchor file): give --anchors FILE")
    if archive is None:
        archive = _default_directory(DEFAULT_ARCHIVE_DIRECTORY, "archive", "default archive",
                                     "--archive", notes)
    return EvidencePlaces(close_dir, anchors, archive, tuple(notes))


def _default_directory(default: Path, what: str, called: str, option: str,
                       notes: list[str]) -> Path | None:
    """The default directory when it exists here, with a note saying whether it was checked
    (a user who typed plain `verify` learns what it did not look at)."""
    if default.is_dir():
        notes.append(f"{what}: checked {default}/ (the {called})")
        return default
    notes.append(f"{what}: not checked, no {default}/ here (the {called}): give {option} DIR")
    return None


def _anchors_there(path: Path) -> bool:
    """An anchor file on disk, or on object storage a prefix some anchor object is under."""
    if object_storage_url(path) is None:
        return path.is_file()
    return path_exists(path)


def _shown(path: Path) -> str:
    """A place as the user writes it (`s3://bucket/prefix`, not Path's `s3:/bucket/prefix`)."""
    return object_storage_url(path) or str(path)
