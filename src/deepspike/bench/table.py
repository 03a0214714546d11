"""The comparison table, built only from ``result.json`` records.

Rows are grouped as in the review's Table I (fully connected; spiking CNNs; RBM/DBN; recurrent).
Each row shows the paper's accuracy beside ours with the difference, and what the model costs:
time steps, synaptic operations per inference, the equivalent ANN's MACs, energy per inference on
each hardware profile, spikes per neuron, parameters and training time. Rows below the paper's
accuracy are flagged with ⚠.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deepspike.recipes.registry import GROUPS

ENERGY_PROFILES: tuple[str, ...] = ("cmos45_float", "cmos45_int", "loihi", "truenorth")

COLUMNS: tuple[str, ...] = (
    "recipe",
    "paper (row)",
    "method",
    "local",
    "dataset",
    "paper %",
    "ours % (Δ)",
    "T",
    "synops",
    "ANN MACs",
    "µJ 45nm float (ANN)",
    "µJ 45nm int (ANN)",
    "µJ Loihi",
    "µJ TrueNorth",
    "spikes/neuron",
    "params",
    "train s",
)


def si(value: float | None) -> str:
    """Format a count with an SI suffix: 1.23M, 45.6k; ``—`` for missing values."""
    if value is None:
        return "—"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def number(value: float | None, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def paper_accuracy(record: Mapping[str, Any]) -> float | None:
    return (record.get("paper") or {}).get("accuracy")


def below_paper(record: Mapping[str, Any]) -> bool:
    paper = paper_accuracy(record)
    return record.get("status") != "failed" and paper is not None and record["accuracy"] < paper


def energy_cell(energy: Mapping[str, float], profile: str) -> str:
    snn = energy.get(profile)
    ann = energy.get(f"{profile}_ann")
    cell = number(snn)
    return cell if ann is None else f"{cell} ({number(ann)})"


def run_label(record: Mapping[str, Any]) -> str:
    """The recipe id, with the values of its ``label_keys`` settings when it declares some."""
    from deepspike.recipes import RECIPES

    recipe = RECIPES.get(record["recipe"])
    config = record.get("config") or {}
    keys = [k for k in (recipe.label_keys if recipe else ()) if k in config]
    variant = ", ".join(f"{k}={config[k]}" for k in keys)
    return f"{record['recipe']} ({variant})" if variant else record["recipe"]


def row(record: Mapping[str, Any]) -> list[str]:
    """One table row; a failed run shows its reason."""
    if record.get("status") == "failed":
        head = [record["recipe"], "", "", "", record.get("dataset", "—"), "—"]
        failure = f"FAILED: {record.get('error', '')}"
        return [*head, failure] + ["—"] * (len(COLUMNS) - len(head) - 1)
    paper = paper_accuracy(record)
    acc = record["accuracy"]
    delta = f" ({acc - paper:+.2f})" if paper is not None else ""
    flag = " ⚠" if below_paper(record) else ""
    cite = record["paper"].get("cite", "")
    paper_row = record["paper"].get("row", "")
    energy = record.get("energy_uj_per_sample", {})
    return [
        run_label(record),
        f"{cite} ({paper_row})" if paper_row else cite,
        record.get("method", ""),
        "yes" if record.get("local_learning") else "no",
        record["dataset"],
        number(paper, ".2f"),
        f"{acc:.2f}{delta}{flag}",
        str(record["timesteps"]),
        si(record["synops_per_sample"]),
        si(record["ann_macs_per_sample"]),
        *(energy_cell(energy, p) for p in ENERGY_PROFILES),
        number(record.get("spikes_per_neuron")),
        si(record.get("params")),
        number(training_seconds(record), ".0f"),
    ]


RESUME_MARKERS = ("resumed_at_image", "resumed_at_epoch")
"""The ``extra`` fields where a resumable recipe records where a resumed run picked up."""


def training_seconds(record: Mapping[str, Any]) -> float | None:
    """The run's training time: ``train_seconds``, or for a run resumed from a progress file the
    time over all its sessions (``extra.train_seconds_all_sessions``; ``None``, shown as —, when
    an earlier session did not record it)."""
    extra = record.get("extra") or {}
    if any(extra.get(key) is not None for key in RESUME_MARKERS):
        return extra.get("train_seconds_all_sessions")
    return record.get("train_seconds")


def grouped(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Records grouped in the review's order; unknown groups (and failures) come last."""
    buckets: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        buckets.setdefault(record.get("group") or "other", []).append(record)
    order = [g for g in GROUPS if g in buckets] + [g for g in buckets if g not in GROUPS]
    return [(g, buckets[g]) for g in order]


def markdown_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of ``records``, one section row per group; ⚠ marks rows below the paper."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for group, members in grouped(records):
        lines.append(f"| **{group}** |" + " |" * (len(COLUMNS) - 1))
        lines += ["| " + " | ".join(row(r)) + " |" for r in members]
    return "\n".join(lines) + "\n"
