"""The command line as other programs call it: a real process of this checkout's program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CREDITBOOKS = str(Path(sys.executable).with_name("creditbooks"))


def creditbooks(*arguments, cwd, check=True):
    # The actor the tests act as (tests/conftest.py) goes along; a test that unsets it sees
    # the refusal of a close without one.
    actor = {"CREDITBOOKS_ACTOR": os.environ["CREDITBOOKS_ACTOR"]} if os.environ.get(
        "CREDITBOOKS_ACTOR") else {}
    completed = subprocess.run([CREDITBOOKS, *arguments], cwd=cwd, capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **actor})
    if check and completed.returncode != 0:
        raise AssertionError(f"exit {completed.returncode}: {completed.stderr}")
    return completed


def verify_rows(books: Path, *options: str) -> tuple[int, dict[str, dict]]:
    """`creditbooks verify`'s exit code and its rows by control, run in `books`: a control
    keyed by its name before any parenthesis or " in " (the place it checked)."""
    completed = creditbooks("verify", "--format", "json", *options, cwd=books, check=False)
    return completed.returncode, {row["control"].split(" (")[0].split(" in ")[0]: row
                                  for row in json.loads(completed.stdout)}
