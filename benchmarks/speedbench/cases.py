"""The benchmark's cases. Each takes a :class:`Context` and returns a JSON-ready dict; a
library that is unavailable, or that fails, is recorded with its reason and the case goes on."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speedbench import convnet, memory, spec, stdp
from speedbench.libraries import (
    DEEPSPIKE,
    LIBRARIES,
    LIMIT,
    VARIANTS,
    Library,
    Status,
    one_line,
)
from speedbench.sparse import dense_forced
from speedbench.timing import Timing, time_fn, time_interleaved
from speedbench.workload import Workload, inference, spikes, train_step, workload

MNIST_PIXELS = 784
IMAGE_SHAPE = (1, 28, 28)
Result = dict[str, Any]


def log(message: str) -> None:
    """Progress goes to stderr, so stdout stays free for the final paths."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Context:
    """What every case needs: sizes, the libraries' availability, a progress printer."""

    settings: spec.Settings
    threads: int
    statuses: Mapping[str, Status]
    data_dir: Path | None = None
    progress: Callable[[str], None] = field(default=log)


def guarded(fn: Callable[[], Result]) -> Result:
    """``fn()``, or ``{"error": ...}`` if it raises: one library's failure never stops a run."""
    try:
        return fn()
    except Exception as error:  # recorded in the report, the run goes on
        return {"error": one_line(error)}


def describe(result: Result) -> str:
    if "median_ms" in result:
        return f"{result['median_ms']:10.1f} ms  (min {result['min_ms']:.1f})"
    return result.get("error") or result.get("unavailable") or "?"


def train_case(
    ctx: Context,
    label: str,
    build: Callable[[Library], nn.Module],
    data: Workload,
    libraries: tuple[Library, ...],
) -> dict[str, Result]:
    """Training-step time of each library, or why it has none. The steps are timed
    round-robin (:func:`~speedbench.timing.time_interleaved`), so machine noise hits all alike."""
    results: dict[str, Result] = {}
    steps: dict[str, Callable[[], None]] = {}
    for library in libraries:
        status = ctx.statuses[library.name]
        if not status.available:
            results[library.name] = {"unavailable": status.reason}
            continue
        try:
            torch.manual_seed(0)
            steps[library.name] = train_step(build(library), data, library.reset)
        except Exception as error:  # recorded, the others go on
            results[library.name] = {"error": one_line(error)}
    s = ctx.settings
    timed = time_interleaved(steps, s.warmup, s.repeats, s.train_min_seconds)
    for name, timing in timed.items():
        failed = isinstance(timing, Exception)
        results[name] = {"error": one_line(timing)} if failed else timing.to_dict()
    for library in libraries:
        ctx.progress(f"  {label:<28} {library.name:<13} {describe(results[library.name])}")
    return {library.name: results[library.name] for library in libraries}


def median(result: Result | None) -> float | None:
    return None if not result or "median_ms" not in result else result["median_ms"]


def ratios_to_limit(ms: Mapping[str, Result]) -> dict[str, float]:
    """Each library's median over the limit's median."""
    limit = median(ms.get(LIMIT.name))
    if not limit:
        return {}
    return {
        name: round(value / limit, 3)
        for name, result in ms.items()
        if name != LIMIT.name and (value := median(result)) is not None
    }


def mlp_build(hidden: int) -> Callable[[Library], nn.Module]:
    return lambda library: library.mlp(MNIST_PIXELS, hidden, spec.N_CLASSES)


def mlp_workload(timesteps: int, batch: int) -> Workload:
    return workload(timesteps, batch, (MNIST_PIXELS,), spec.INPUT_ACTIVITY)


def mlp_config(hidden: int, timesteps: int, batch: int | None = None) -> dict[str, Any]:
    config = {"layers": f"{MNIST_PIXELS}-{hidden}-{spec.N_CLASSES}", "timesteps": timesteps}
    return config if batch is None else {**config, "batch": batch}


def mlp_case(ctx: Context) -> Result:
    s = ctx.settings
    data = mlp_workload(s.mlp_timesteps, s.mlp_batch)
    ms = train_case(ctx, "mlp", mlp_build(s.mlp_hidden), data, (*LIBRARIES, *VARIANTS))
    return {
        "config": mlp_config(s.mlp_hidden, s.mlp_timesteps, s.mlp_batch),
        "ms": ms,
        "ratio_to_limit": ratios_to_limit(ms),
    }


def cnn_case(ctx: Context) -> Result:
    s = ctx.settings
    data = workload(s.cnn_timesteps, s.cnn_batch, IMAGE_SHAPE, spec.INPUT_ACTIVITY)
    ms = train_case(ctx, "cnn", lambda library: library.cnn(), data, LIBRARIES)
    return {
        "config": {
            "layers": "conv1-12 5x5, pool2, LIF, conv12-32 5x5, pool2, LIF, 512-10, LIF",
            "timesteps": s.cnn_timesteps,
            "batch": s.cnn_batch,
            "input": "28x28",
        },
        "ms": ms,
        "ratio_to_limit": ratios_to_limit(ms),
    }


def scaling_case(ctx: Context) -> Result:
    s = ctx.settings
    libraries = LIBRARIES if s.scaling_peers else (DEEPSPIKE, LIMIT)
    cells = []
    for timesteps in s.scaling.timesteps:
        for hidden in s.scaling.hidden:
            data = mlp_workload(timesteps, s.mlp_batch)
            label = f"scaling T={timesteps} hidden={hidden}"
            ms = train_case(ctx, label, mlp_build(hidden), data, libraries)
            cells.append(
                {
                    "timesteps": timesteps,
                    "hidden": hidden,
                    "ms": ms,
                    "ratio_to_limit": ratios_to_limit(ms),
                }
            )
    return {
        "config": {
            "batch": s.mlp_batch,
            "timesteps": list(s.scaling.timesteps),
            "hidden": list(s.scaling.hidden),
        },
        "libraries": [library.name for library in libraries],
        "cells": cells,
    }


def memory_case(ctx: Context) -> Result:
    """Saved-for-backward bytes (in process) and peak-RSS growth (one subprocess each)."""
    s = ctx.settings
    data = mlp_workload(s.memory_timesteps, s.mlp_batch)
    saved: dict[str, Any] = {}
    rss: dict[str, Any] = {}
    for library in (lib for lib in (*LIBRARIES, *VARIANTS) if lib.name in s.memory_libraries):
        status = ctx.statuses[library.name]
        if not status.available:
            saved[library.name] = rss[library.name] = {"unavailable": status.reason}
            continue
        saved[library.name] = guarded(lambda lib=library: saved_mb(lib, data, s.mlp_hidden))
        rss[library.name] = memory.rss_in_subprocess(
            library.name, s.memory_timesteps, s.mlp_batch, s.mlp_hidden, ctx.threads
        )
        ctx.progress(
            f"  memory T={s.memory_timesteps:<19} {library.name:<13} "
            f"saved {mib(saved[library.name], 'mb')}, "
            f"peak RSS delta {mib(rss[library.name], 'peak_rss_delta_mb')}"
        )
    return {
        "config": mlp_config(s.mlp_hidden, s.memory_timesteps, s.mlp_batch),
        "saved_for_backward": saved,
        "peak_rss_delta": rss,
    }


def mib(result: Result, key: str) -> str:
    return f"{result[key]:.1f} MiB" if key in result else describe(result)


def saved_mb(library: Library, data: Workload, hidden: int) -> Result:
    torch.manual_seed(0)
    model = library.mlp(MNIST_PIXELS, hidden, spec.N_CLASSES)
    size = memory.saved_tensor_bytes(model, data)
    library.reset(model)
    return {"mb": round(size / memory.MB, 2)}


def time_inference(model: nn.Module, x: torch.Tensor, ctx: Context) -> Timing:
    s = ctx.settings
    return time_fn(inference(model, x), s.warmup, s.inference_repeats, s.inference_min_seconds)


def sparse_row(ctx: Context, batch: int, activity: float) -> Result:
    s = ctx.settings
    torch.manual_seed(0)
    model = DEEPSPIKE.mlp(MNIST_PIXELS, s.mlp_hidden, spec.N_CLASSES)
    limit = LIMIT.mlp(MNIST_PIXELS, s.mlp_hidden, spec.N_CLASSES)
    x = spikes((s.sparse_timesteps, batch, MNIST_PIXELS), activity, seed=batch)
    event = time_inference(model, x, ctx)
    with dense_forced(model) as forced_by:
        dense = time_inference(model, x, ctx)
    layer = model[0]  # the synaptic layer alone: the only part the two paths do differently
    layer_event = time_inference(layer, x, ctx)
    with dense_forced(layer):
        layer_dense = time_inference(layer, x, ctx)
    return {
        "batch": batch,
        "activity": activity,
        "event_ms": event.to_dict(),
        "dense_ms": dense.to_dict(),
        "limit_forward_ms": time_inference(limit, x, ctx).to_dict(),
        "speedup": round(dense.median_ms / event.median_ms, 3),
        "speedup_of_min": round(dense.min_ms / event.min_ms, 3),  # steadier on a busy machine
        "layer_event_ms": layer_event.to_dict(),
        "layer_dense_ms": layer_dense.to_dict(),
        "layer_speedup": round(layer_dense.median_ms / layer_event.median_ms, 3),
        "dense_forced_by": forced_by,
    }


def sparse_case(ctx: Context) -> Result:
    """deepspike inference: as it chooses (event-driven when it can) against forced dense."""
    s = ctx.settings
    rows = []
    for batch in s.sparse_batches:
        for activity in s.sparse_activities:
            row = guarded(lambda b=batch, a=activity: sparse_row(ctx, b, a))
            rows.append({"batch": batch, "activity": activity, **row})
            shown = f"speed-up {row['speedup']:.2f}x" if "speedup" in row else row["error"]
            ctx.progress(f"  sparse batch={batch:<4} activity={activity:<6} {shown}")
    return {
        "config": mlp_config(s.mlp_hidden, s.sparse_timesteps),
        "rows": rows,
    }


def stdp_case(ctx: Context) -> Result:
    results = {}
    for name, run in (("deepspike", stdp.deepspike_stdp), ("bindsnet", stdp.bindsnet_stdp)):
        result = results[name] = guarded(lambda run=run: run(ctx.settings, ctx.data_dir))
        rate = result.get("images_per_s")
        shown = f"{rate:.2f} images/s" if rate else result.get("reason") or result.get("error")
        ctx.progress(f"  stdp {name:<23} {shown}")
    return {"protocol": stdp.protocol(ctx.settings), **results}


def compiled_paths_shown(ctx: Context, label: str, result: Result) -> None:
    for name in ("compiled", "torch"):
        rate = result.get(name, {}).get("images_per_s")
        shown = f"{rate} images/s" if rate else result.get(name, result)
        ctx.progress(f"  {label} {name:<10} {shown}")


def conv_stdp_case(ctx: Context) -> Result:
    s = ctx.settings
    result = guarded(
        lambda: convnet.conv_layers_throughput(s.conv_stdp_images, 1, s.repeats, ctx.data_dir)
    )
    for layer in ("conv1", "conv2"):
        compiled_paths_shown(ctx, f"conv STDP {layer}", result.get(layer, result))
    return result


def rstdp_case(ctx: Context) -> Result:
    s = ctx.settings
    result = guarded(lambda: convnet.decision_layer_throughput(s.rstdp_images, 1, s.repeats))
    compiled_paths_shown(ctx, "rstdp", result)
    return result


CASES: dict[str, Callable[[Context], Result]] = {
    "mlp_train": mlp_case,
    "cnn_train": cnn_case,
    "scaling": scaling_case,
    "memory": memory_case,
    "sparse_inference": sparse_case,
    "stdp": stdp_case,
    "conv_stdp": conv_stdp_case,
    "rstdp_decision": rstdp_case,
}
