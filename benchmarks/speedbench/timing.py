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


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    warmup: int,
    repeats: int,
    min_seconds: float = 0.0,
    max_repeats: int = 1_000,
) -> dict[str, Timing | Exception]:
    """Time several functions fairly: each is warmed up, then the timed calls go round-robin
    (one call of each in turn), so a slow phase of the machine (another process, a frequency
    change) falls on every function alike instead of on whichever ran then. At least
    ``repeats`` rounds run, and more while any function's timed total is under ``min_seconds``
    (up to ``max_repeats``), so that steps of a few milliseconds get enough samples for a
    stable median. A function that raises is recorded with its exception and leaves the
    rotation."""
    results: dict[str, Timing | Exception] = {}
    live: dict[str, Callable[[], Any]] = {}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                fn()
            live[name] = fn
        except Exception as error:  # recorded by the caller, the others go on
            results[name] = error
    seconds: dict[str, list[float]] = {name: [] for name in live}

    def more_rounds(done: int) -> bool:
        short = any(sum(seconds[name]) < min_seconds for name in live)
        return done < repeats or (short and done < max_repeats)

    rounds = 0
    while live and more_rounds(rounds):
        rounds += 1
        for name, fn in list(live.items()):
            start = time.perf_counter()
            try:
                fn()
            except Exception as error:
                results[name] = error
                del live[name]
                continue
            seconds[name].append(time.perf_counter() - start)
    for name in live:
        results[name] = summarise(seconds[name])
    return {name: results[name] for name in fns}
