"""The comparison table, built only from ``result.json`` records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COLUMNS: tuple[str, ...] = (
    "recipe",
    "dataset",
    "acc %",
    "paper %",
    "synops",
    "ANN MACs",
    "energy µJ (SNN / ANN, 45 nm)",
    "T",
    "spikes/neuron",
    "train s",
)


def si(value: float | None) -> str:
    """Format a count with an SI suffix: 1.23M, 45.6k."""
    if value is None:
        return "—"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def row(record: Mapping[str, Any]) -> list[str]:
    """One table row; a failed run shows its reason."""
    if record.get("status") == "failed":
        return [record["recipe"], record.get("dataset", "—"), "FAILED", "—", record["error"]] + [
            "—"
        ] * (len(COLUMNS) - 5)
    paper = record["paper"].get("accuracy")
    acc = record["accuracy"]
    flag = " ⚠" if paper is not None and acc < paper else ""
    delta = f" ({acc - paper:+.2f})" if paper is not None else ""
    energy = record["energy_uj_per_sample"]
    return [
        record["recipe"],
        record["dataset"],
        f"{acc:.2f}{delta}{flag}",
        "—" if paper is None else f"{paper:.2f}",
        si(record["synops_per_sample"]),
        si(record["ann_macs_per_sample"]),
        f"{energy['cmos45_float']:.3g} / {energy['cmos45_float_ann']:.3g}",
        str(record["timesteps"]),
        f"{record['spikes_per_neuron']:.3g}",
        f"{record['train_seconds']:.1f}",
    ]


def markdown_table(records: Iterable[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table of ``records``; rows below the paper are flagged ⚠."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in records]
    return "\n".join(lines) + "\n"
