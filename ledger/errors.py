"""Errors as data: what a check found wrong, returned as values rather than raised one by one.

As in beancount, a check collects every problem it finds into a list of small immutable
values, and its caller decides what to do with them: refuse with the first, count them,
or show them all. Each names where the problem is (`source`: a file, a batch, a table),
what is wrong (`message`, one line a user can act on) and, when there is one, the entry,
row or key it concerns (`entry`), so a caller can group or filter without parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BooksError:
    """One problem: where (`source`), what (`message`, one line) and which entry, row or key."""

    source: str
    message: str
    entry: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def first_and_count(errors: Sequence[BooksError]) -> str:
    """One line for a list of problems: the first in full, then how many more and where."""
    first, *others = errors
    if not others:
        return str(first)
    where = ", ".join(error.entry or error.source for error in others[:5])
    more = "" if len(others) <= 5 else ", ..."
    return f"{first}; and {len(others)} more: {where}{more}"
