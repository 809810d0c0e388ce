"""Values computed once per key, however many threads ask for them at the same time.

A close builds its reports on several threads, and many of them need the same reads and
the same figures. `functools.cache` would let two threads that ask at once both compute;
here the first asker computes and the others wait for its answer (or its exception).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future


class Once:
    """A map from key to value where each value is computed by the first caller only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, Future] = {}

    def get(self, key: Hashable, compute: Callable[[], object]):
        with self._lock:
            answer = self._answers.get(key)
            computing = answer is None
            if computing:
                answer = self._answers[key] = Future()
        if computing:
            try:
                answer.set_result(compute())
            except BaseException as error:  # the waiting callers get the same error
                answer.set_exception(error)
                raise
        return answer.result()

    def adopt(self, key: Hashable, answer: Future) -> None:
        """Let `answer`, being worked out elsewhere (another process, say), be the value
        for `key`, unless the key already has one."""
        with self._lock:
            self._answers.setdefault(key, answer)


def computed_once(function: Callable) -> Callable:
    """`function` with each distinct argument list computed once (thread-safe `cache`)."""
    answers = Once()

    def once(*arguments):
        return answers.get(arguments, lambda: function(*arguments))

    return once
