"""Runs the same work on several threads at once, as concurrent Lambda invocations would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def in_threads(work: Callable[..., Any], arguments: Sequence[tuple]) -> list[Any]:
    """work(*args) on one thread per args tuple; the results in order, or the first error raised."""
    results: list[Any] = [None] * len(arguments)
    errors: list[BaseException] = []

    def run(index: int, args: tuple) -> None:
        try:
            results[index] = work(*args)
        except BaseException as exc:  # re-raised on the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, args)) for i, args in enumerate(arguments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
