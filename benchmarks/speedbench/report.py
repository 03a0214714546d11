"""Machine facts, the ``summary`` with the issue's targets, and the JSON and Markdown files."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedbench.libraries import LIMIT, PEERS

JSON_FILE = "cpu.json"
MARKDOWN_FILE = "cpu.md"


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: ``value <= threshold`` (``at_most``) or ``>=``."""

    name: str
    threshold: float
    at_most: bool
    meaning: str

    def check(self, value: float | None) -> dict[str, Any]:
        met = (
            None
            if value is None
            else (value <= self.threshold if self.at_most else value >= self.threshold)
        )
        return {
            "met": met,
            "value": None if value is None else round(value, 3),
            "threshold": self.threshold,
            "comparison": "<=" if self.at_most else ">=",
            "meaning": self.meaning,
        }


TARGETS = {
    "mlp_within_limit": Target(
        "mlp_within_limit",
        1.25,
        True,
        "deepspike MLP training step / limit, worst cell of the (T, hidden) scaling table",
    ),
    "cnn_within_limit": Target(
        "cnn_within_limit", 1.08, True, "deepspike CNN training step / limit"
    ),
    "memory_vs_snntorch": Target(
        "memory_vs_snntorch",
        0.5,
        True,
        "deepspike with Recompute blocks (its memory-lean mode) / snnTorch saved-for-backward "
        "memory, MLP T=100 batch 128 (the default mode's ratio is memory_default_vs_snntorch)",
    ),
    "sparse_speedup": Target(
        "sparse_speedup",
        3.0,
        False,
        "deepspike inference, forced dense / event-driven, 5 % input activity, batch 1",
    ),
    "stdp_vs_bindsnet": Target(
        "stdp_vs_bindsnet", 20.0, False, "deepspike / BindsNET STDP images per second"
    ),
}


# --- reading results -----------------------------------------------------------------------


def dig(results: Mapping[str, Any], *path: str | int) -> Any:
    """``results[path[0]][path[1]]...`` or None where any step is missing."""
    node: Any = results
    for key in path:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            return None
    return node


def ms(results: Mapping[str, Any], case: str, library: str) -> float | None:
    return dig(results, case, "ms", library, "median_ms")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def best_peer(results: Mapping[str, Any], case: str) -> tuple[str | None, float | None]:
    """The fastest peer (by median) with a timing in ``case``."""
    timed = [(t, peer.name) for peer in PEERS if (t := ms(results, case, peer.name)) is not None]
    if not timed:
        return None, None
    fastest, name = min(timed)
    return name, fastest


def worst_scaling_ratio(results: Mapping[str, Any]) -> float | None:
    """Largest deepspike / limit ratio over the scaling table (None if any cell is missing)."""
    cells = dig(results, "scaling", "cells") or []
    values = [dig(cell, "ratio_to_limit", "deepspike") for cell in cells]
    if not values or any(value is None for value in values):
        return None
    return max(values)


def sparse_speedup(
    results: Mapping[str, Any], batch: int, activity: float, key: str = "speedup"
) -> float | None:
    for row in dig(results, "sparse_inference", "rows") or []:
        if row.get("batch") == batch and row.get("activity") == activity:
            return row.get(key)
    return None


def memory_mb(results: Mapping[str, Any], measure: str, library: str) -> float | None:
    key = "mb" if measure == "saved_for_backward" else "peak_rss_delta_mb"
    return dig(results, "memory", measure, library, key)


def build_summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers and the issue's target checks (``met`` is null when unmeasured)."""
    peer, peer_ms = best_peer(results, "mlp_train")
    saved = memory_mb(results, "saved_for_backward", "deepspike")
    saved_lean = memory_mb(results, "saved_for_backward", "deepspike-lean")
    saved_snntorch = memory_mb(results, "saved_for_backward", "snntorch")
    stdp_rate = dig(results, "stdp", "deepspike", "images_per_s")
    bindsnet_rate = dig(results, "stdp", "bindsnet", "images_per_s")
    summary = {
        "mlp_train_ms": ms(results, "mlp_train", "deepspike"),
        "mlp_limit_ms": ms(results, "mlp_train", LIMIT.name),
        "mlp_best_peer": peer,
        "mlp_best_peer_ms": peer_ms,
        "cnn_train_ms": ms(results, "cnn_train", "deepspike"),
        "cnn_limit_ms": ms(results, "cnn_train", LIMIT.name),
        "peak_mem_T100_mb": saved,
        "snntorch_peak_mem_T100_mb": saved_snntorch,
        "peak_mem_T100_lean_mb": saved_lean,
        "memory_default_vs_snntorch": ratio(saved, saved_snntorch),
        "mlp_train_lean_ms": ms(results, "mlp_train", "deepspike-lean"),
        "peak_mem_measure": "saved-for-backward tensors (MiB); RSS deltas below",
        "peak_rss_T100_mb": memory_mb(results, "peak_rss_delta", "deepspike"),
        "snntorch_peak_rss_T100_mb": memory_mb(results, "peak_rss_delta", "snntorch"),
        "sparse_speedup_at_5pct": sparse_speedup(results, 1, 0.05),
        "sparse_speedup_at_5pct_of_min": sparse_speedup(results, 1, 0.05, "speedup_of_min"),
        "sparse_speedup_at_5pct_batch128": sparse_speedup(results, 128, 0.05),
        "sparse_layer_speedup_at_5pct": sparse_speedup(results, 1, 0.05, "layer_speedup"),
        "stdp_images_per_s": stdp_rate,
        "bindsnet_images_per_s": bindsnet_rate,
    }
    values = {
        "mlp_within_limit": worst_scaling_ratio(results),
        "cnn_within_limit": ratio(summary["cnn_train_ms"], summary["cnn_limit_ms"]),
        "memory_vs_snntorch": ratio(saved_lean, saved_snntorch),
        "sparse_speedup": summary["sparse_speedup_at_5pct"],
        "stdp_vs_bindsnet": ratio(stdp_rate, bindsnet_rate),
    }
    summary["targets"] = {name: TARGETS[name].check(value) for name, value in values.items()}
    return summary


# --- machine facts -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(threads: int, versions: Mapping[str, str | None]) -> dict[str, Any]:
    import numpy
    import torch

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else None,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "libraries": dict(versions),
    }


# --- files ---------------------------------------------------------------------------------


def write(results: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``cpu.json`` and ``cpu.md`` into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / JSON_FILE, out / MARKDOWN_FILE
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def cell(value: Any) -> str:
    """A Markdown table cell: numbers to 3 significant figures, ``|`` escaped."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value).replace("|", "\\|")


def timing_cell(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "—"
    if "median_ms" in result:
        return f"{result['median_ms']:.1f} (min {result['min_ms']:.1f})"
    return f"n/a: {result.get('unavailable') or result.get('error')}"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table followed by a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def train_section(results: Mapping[str, Any], case: str, title: str) -> list[str]:
    data = results.get(case)
    if not data:
        return []
    config = ", ".join(f"{k} {v}" for k, v in data["config"].items())
    rows = [
        [name, timing_cell(result), cell(data["ratio_to_limit"].get(name))]
        for name, result in data["ms"].items()
    ]
    return [
        f"## {title}",
        "",
        config,
        "",
        *table(["library", "ms per training step (median, min)", "x limit"], rows),
    ]


def scaling_section(results: Mapping[str, Any]) -> list[str]:
    data = results.get("scaling")
    if not data:
        return []
    names = data["libraries"]
    rows = [
        [
            cell["timesteps"],
            cell["hidden"],
            *(timing_cell(cell["ms"].get(name)) for name in names),
            cell_ratio(cell),
        ]
        for cell in data["cells"]
    ]
    return [
        "## MLP scaling (training step, ms)",
        "",
        f"batch {data['config']['batch']}",
        "",
        *table(["T", "hidden", *names, "deepspike x limit"], rows),
    ]


def cell_ratio(scaling_cell: Mapping[str, Any]) -> str:
    return cell(scaling_cell["ratio_to_limit"].get("deepspike"))


def memory_section(results: Mapping[str, Any]) -> list[str]:
    data = results.get("memory")
    if not data:
        return []
    rows = []
    for name, saved in data["saved_for_backward"].items():
        rss = data["peak_rss_delta"].get(name, {})
        rows.append(
            [
                name,
                cell(saved.get("mb")) if "mb" in saved else note(saved),
                cell(rss.get("peak_rss_delta_mb")) if "peak_rss_delta_mb" in rss else note(rss),
            ]
        )
    config = ", ".join(f"{k} {v}" for k, v in data["config"].items())
    return [
        "## Training memory (MLP)",
        "",
        config,
        "",
        *table(["library", "saved for backward (MiB)", "peak RSS delta (MiB)"], rows),
    ]


def note(result: Mapping[str, Any]) -> str:
    return f"n/a: {result.get('unavailable') or result.get('error')}"


def sparse_section(results: Mapping[str, Any]) -> list[str]:
    data = results.get("sparse_inference")
    if not data:
        return []
    rows = [
        [
            row["batch"],
            f"{100 * row['activity']:g} %",
            timing_cell(row.get("dense_ms")),
            timing_cell(row.get("event_ms")),
            timing_cell(row.get("limit_forward_ms")),
            cell(row.get("speedup")),
            cell(row.get("speedup_of_min")),
            cell(row.get("layer_speedup")),
        ]
        for row in data["rows"]
    ]
    forced = {row.get("dense_forced_by") for row in data["rows"]} - {None}
    return [
        "## Inference vs input activity (deepspike MLP)",
        "",
        f"T {data['config']['timesteps']}; dense forced by: {', '.join(sorted(forced))}",
        "",
        *table(
            [
                "batch",
                "activity",
                "dense ms",
                "event ms",
                "limit forward ms",
                "speed-up",
                "of min",
                "layer alone",
            ],
            rows,
        ),
    ]


def throughput_section(
    data: Mapping[str, Any] | None, title: str, column: str, names: tuple[str, ...]
) -> list[str]:
    """A case's protocol and an images-per-second row for each of ``names``."""
    if not data:
        return []
    if "protocol" not in data:  # the whole case failed
        return [title, "", data.get("error", "")]
    rows = [
        [
            name,
            cell(data[name].get("images_per_s")),
            data[name].get("reason") or data[name].get("error") or "",
        ]
        for name in names
    ]
    protocol = ", ".join(f"{k} {v}" for k, v in data["protocol"].items())
    return [title, "", protocol, "", *table([column, "images/s", "note"], rows)]


def stdp_section(results: Mapping[str, Any]) -> list[str]:
    return throughput_section(
        results.get("stdp"), "## STDP (Diehl & Cook 2015)", "library", ("deepspike", "bindsnet")
    )


def rstdp_section(results: Mapping[str, Any]) -> list[str]:
    data = results.get("rstdp_decision")
    title = "## R-STDP decision layer (Mozafari et al. 2019)"
    lines = throughput_section(data, title, "path", ("compiled", "torch"))
    if data and "speedup" in data:
        lines += [f"Speed-up of the compiled loop: {cell(data['speedup'])}x", ""]
    return lines


def conv_stdp_section(results: Mapping[str, Any]) -> list[str]:
    data = results.get("conv_stdp")
    if not data:
        return []
    title = "## Conv STDP layers (Mozafari et al. 2019)"
    if "protocol" not in data:
        return [title, "", data.get("error", "")]
    lines = [title, "", ", ".join(f"{k} {v}" for k, v in data["protocol"].items())]
    for layer in ("conv1", "conv2"):
        layer_data = data.get(layer, {})
        described = {k: v for k, v in layer_data.items() if k in ("maps", "kernel", "input_fired")}
        section = throughput_section(
            {"protocol": described, **layer_data}, f"### {layer}", "path", ("compiled", "torch")
        )
        lines += ["", *section]
        if "speedup" in layer_data:
            lines.append(f"Speed-up of the compiled path: {cell(layer_data['speedup'])}x")
    return [*lines, ""]


def summary_section(results: Mapping[str, Any]) -> list[str]:
    summary = results.get("summary", {})
    rows = [
        [
            name,
            target["meaning"],
            f"{target['comparison']} {target['threshold']:g}",
            cell(target["value"]),
            {True: "yes", False: "**no**", None: "not measured"}[target["met"]],
        ]
        for name, target in summary.get("targets", {}).items()
    ]
    return ["## Targets", "", *table(["target", "measure", "threshold", "value", "met"], rows)]


def header_section(results: Mapping[str, Any]) -> list[str]:
    machine = results["machine"]
    libs = results["libraries"]
    lines = [
        "# deepspike speed benchmark (CPU)",
        "",
        f"{machine['cpu']}; {machine['threads']} threads; torch {machine['torch']}; "
        f"python {machine['python']}; {'quick' if results['quick'] else 'full'} run "
        f"({results['settings']['warmup']} warm-up, {results['settings']['repeats']} repeats; "
        "times are medians, min in brackets)",
        "",
    ]
    rows = [
        [
            name,
            status.get("version") or "—",
            "yes" if status["available"] else f"no: {status['reason']}",
            results["neuron_mapping"].get(name, ""),
        ]
        for name, status in libs.items()
    ]
    return lines + table(["library", "version", "available", "neuron mapping"], rows)


def markdown(results: Mapping[str, Any]) -> str:
    sections = [
        header_section(results),
        summary_section(results),
        train_section(results, "mlp_train", "MLP training step"),
        train_section(results, "cnn_train", "CNN training step"),
        scaling_section(results),
        memory_section(results),
        sparse_section(results),
        stdp_section(results),
        conv_stdp_section(results),
        rstdp_section(results),
    ]
    return "\n".join(line for section in sections for line in section)
