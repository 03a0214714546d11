"""Wall-clock timing: the same warm-up for everyone, then median and minimum over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Milliseconds per call over ``repeats`` timed calls (after the warm-up)."""

    median_ms: float
    min_ms: float
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {
            key: round(value, 3) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }


def summarise(seconds: list[float]) -> Timing:
    """Median and minimum of per-call durations given in seconds."""
    if not seconds:
        raise ValueError("need at least one timed repeat")
    return Timing(
        median_ms=1e3 * statistics.median(seconds),
        min_ms=1e3 * min(seconds),
        repeats=len(seconds),
    )


def time_fn(
    fn: Callable[[], Any],
    warmup: int,
    repeats: int,
    min_seconds: float = 0.0,
    max_repeats: int = 10_000,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then time calls one by one: at least ``repeats``
    of them, and more while their total is under ``min_seconds`` (up to ``max_repeats``), so
    that sub-millisecond calls get enough samples for a stable median."""
    for _ in range(warmup):
        fn()
    seconds: list[float] = []
    while len(seconds) < repeats or (sum(seconds) < min_seconds and len(seconds) < max_repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return summarise(seconds)
