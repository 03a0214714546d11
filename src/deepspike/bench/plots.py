"""Figures of the benchmark report, each drawn from ``result.json`` records (and, for learned
receptive fields, the run's checkpoint). Every function returns a matplotlib figure or ``None``
when the records hold nothing to draw."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from deepspike.bench.table import paper_accuracy
from deepspike.errors import CheckpointError
from deepspike.io import load_checkpoint

Record = Mapping[str, Any]


def finished(records: Sequence[Record]) -> list[Record]:
    return [r for r in records if r.get("status") != "failed"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points not dominated by one with lower-or-equal cost and higher-or-equal accuracy,
    sorted by cost: the accuracy-energy trade-off curve."""
    front: list[tuple[float, float]] = []
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


def accuracy_vs_energy(records: Sequence[Record], profile: str = "cmos45_float"):
    """Accuracy against energy per inference (log x), Pareto front, paper accuracy markers."""
    rows = [r for r in finished(records) if r["energy_uj_per_sample"].get(profile)]
    if not rows:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    points = []
    for r in rows:
        energy = r["energy_uj_per_sample"][profile]
        points.append((energy, r["accuracy"]))
        ax.scatter(energy, r["accuracy"], s=40, zorder=3)
        ax.annotate(
            r["recipe"],
            (energy, r["accuracy"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
        paper = paper_accuracy(r)
        if paper is not None:
            ax.scatter(energy, paper, marker="_", s=200, color="black", zorder=2)
    front = pareto_front(points)
    ax.plot(*zip(*front, strict=True), "--", color="grey", label="Pareto front")
    ax.scatter([], [], marker="_", s=200, color="black", label="paper accuracy")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference (µJ, {profile})")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def accuracy_vs_timesteps(records: Sequence[Record]):
    """Accuracy against the number of time steps to a decision."""
    rows = finished(records)
    if not rows:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for r in rows:
        ax.scatter(r["timesteps"], r["accuracy"], s=40)
        ax.annotate(
            r["recipe"],
            (r["timesteps"], r["accuracy"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("time steps")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def synaptic_layers(record: Record) -> list[Mapping[str, Any]]:
    return [layer for layer in record.get("layers", []) if layer.get("kind") != "neuron"]


def synops_per_layer(records: Sequence[Record]):
    """Synaptic operations per inference of each synaptic layer, one bar group per recipe."""
    rows = [r for r in finished(records) if synaptic_layers(r)]
    if not rows:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    depth = max(len(synaptic_layers(r)) for r in rows)
    width = 0.8 / depth
    for i in range(depth):
        values = [
            (synaptic_layers(r)[i]["acs"] + synaptic_layers(r)[i]["macs"])
            if i < len(synaptic_layers(r))
            else 0.0
            for r in rows
        ]
        ax.bar(np.arange(len(rows)) + i * width, values, width, label=f"layer {i + 1}")
    ax.set_xticks(
        np.arange(len(rows)) + 0.4 - width / 2,
        [r["recipe"] for r in rows],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylabel("synaptic ops per inference")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spike_raster(record: Record):
    """Spike raster of one test sample through the network (``extra.raster``: layer ->
    ``[[t, neuron], ...]``)."""
    raster = record.get("extra", {}).get("raster")
    if not raster:
        return None
    fig = Figure(figsize=(7, 1.6 * len(raster) + 0.6))
    axes = fig.subplots(len(raster), 1, sharex=True, squeeze=False)
    for ax, (layer, events) in zip(axes[:, 0], raster.items(), strict=True):
        events = np.asarray(events, dtype=float).reshape(-1, 2)
        ax.scatter(events[:, 0], events[:, 1], s=2, marker="|")
        ax.set_ylabel(layer, fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(f"{record['recipe']}: spikes of one test sample", fontsize=9)
    fig.tight_layout()
    return fig


def first_layer_fields(tensors: Mapping[str, torch.Tensor]) -> np.ndarray | None:
    """The first weight matrix whose inputs form a square image, as ``[n, side, side]``."""
    for name, w in tensors.items():
        if not name.endswith("weight") or w.dim() != 2:
            continue
        side = math.isqrt(w.shape[1])
        if side * side == w.shape[1] and side >= 4:
            return w.float().reshape(w.shape[0], side, side).numpy()
    return None


def receptive_fields(record: Record, run_dir: Path, limit: int = 100):
    """Learned receptive fields of a local-learning (STDP) recipe, from its checkpoint."""
    if not record.get("local_learning"):
        return None
    try:
        tensors, _ = load_checkpoint(run_dir / "checkpoint.safetensors")
    except CheckpointError:
        return None
    fields = first_layer_fields(tensors)
    if fields is None:
        return None
    fields = fields[:limit]
    cols = math.ceil(math.sqrt(len(fields)))
    rows = math.ceil(len(fields) / cols)
    fig = Figure(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, field in zip(axes.flat, fields, strict=False):
        ax.imshow(field, cmap="hot")
    fig.suptitle(f"{record['recipe']}: learned receptive fields", fontsize=9)
    return fig


def operations_curves(record: Record):
    """Accuracy against total operations per inference for several settings (Neil et al. 2016,
    the review's Fig. 3): ``extra.ops_curves`` = ``{setting: {"ops": [...], "accuracy": [...]}}``,
    with ``extra.ann_ops`` marked and each setting's first point at or above
    ``extra.ops_target_accuracy`` highlighted."""
    extra = record.get("extra", {})
    curves = extra.get("ops_curves")
    if not curves:
        return None
    target = extra.get("ops_target_accuracy", 98.0)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for setting, curve in curves.items():
        ops, acc = np.asarray(curve["ops"], float), np.asarray(curve["accuracy"], float)
        (line,) = ax.plot(ops, acc, marker=".", label=setting)
        reached = np.flatnonzero(acc >= target)
        if reached.size:
            ax.scatter(
                ops[reached[0]],
                acc[reached[0]],
                s=80,
                facecolors="none",
                edgecolors=line.get_color(),
                zorder=3,
            )
    if extra.get("ann_ops"):
        ax.axvline(extra["ann_ops"], color="black", linestyle=":", label="ANN ops")
    ax.axhline(target, color="grey", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("operations per inference")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{record['recipe']}: accuracy vs operations", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
