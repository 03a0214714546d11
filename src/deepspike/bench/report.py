"""Render a benchmark directory: ``table.md``, one PNG per plot, and a self-contained
``report.html`` (images embedded as data URIs, no network needed).

Everything is built from the ``result.json`` files under the directory, so ``deepspike report``
can re-render without training.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepspike.bench import plots
from deepspike.bench.table import COLUMNS, below_paper, grouped, markdown_table, row
from deepspike.errors import ConfigError, DataError
from deepspike.io import read_result
from deepspike.io.atomic import write_atomic

RESULT_FILE = "result.json"
log = logging.getLogger("deepspike")
README_BEGIN = "<!-- deepspike:table:begin -->"
README_END = "<!-- deepspike:table:end -->"


def collect(directory: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``*/result.json`` below ``directory`` with its run directory, sorted by path.

    Runs scored on held-out training samples (``deepspike train --validation``) are left out,
    with a warning: the table compares test accuracy with the papers'."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory of runs; give a bench --out directory")
    found = []
    for path in sorted(directory.rglob(RESULT_FILE)):
        try:
            record = read_result(path)
        except DataError:
            continue  # an unfinished or foreign file is not a result
        if record.get("evaluated_on", "test") == "validation":
            log.warning("left out %s: scored on held-out training samples, not the test set", path)
            continue
        found.append((path.parent, record))
    return found


def figures(runs: Sequence[tuple[Path, Mapping[str, Any]]]) -> dict[str, Any]:
    """Name -> matplotlib figure for every plot the records support."""
    records = [r for _, r in runs]
    figs = {
        "accuracy_vs_energy": plots.accuracy_vs_energy(records),
        "accuracy_vs_timesteps": plots.accuracy_vs_timesteps(records),
        "synops_per_layer": plots.synops_per_layer(records),
    }
    for run_dir, record in runs:
        figs[f"raster_{record['recipe']}"] = plots.spike_raster(record)
        figs[f"receptive_fields_{record['recipe']}"] = plots.receptive_fields(record, run_dir)
        figs[f"operations_{record['recipe']}"] = plots.operations_curves(record)
    return {name: fig for name, fig in figs.items() if fig is not None}


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def html_table(records: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for group, members in grouped(records):
        body.append(
            f'<tr class="group"><th colspan="{len(COLUMNS)}">{html.escape(group)}</th></tr>'
        )
        for record in members:
            cls = ' class="below"' if below_paper(record) else ""
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in row(record))
            body.append(f"<tr{cls}>{cells}</tr>")
    rows = "".join(body)
    return f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.group th { background: #eef; text-align: left; }
tr.below td { background: #fee; }
figure { display: inline-block; margin: 1em; }
img.plot { max-width: 640px; }
"""


# Marks the page once every embedded image has decoded (read by the browser test).
IMAGE_CHECK = (
    "<script>window.addEventListener('load', () => { document.body.dataset.imagesDecoded = "
    "[...document.images].every(i => i.complete && i.naturalWidth > 0); });</script>"
)


def html_report(records: Sequence[Mapping[str, Any]], images: Mapping[str, bytes]) -> str:
    figures_html = "".join(
        f'<figure><img class="plot" id="plot-{html.escape(name)}" alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(name.replace('_', ' '))}</figcaption></figure>"
        for name, png in images.items()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>deepspike benchmark</title>"
        f"<style>{STYLE}</style></head><body><h1>deepspike benchmark</h1>"
        "<p>Accuracy from each run's result.json, beside the paper's; cost per inference "
        "(synaptic operations, equivalent ANN MACs, energy per hardware profile). "
        "Rows below the paper's accuracy are shaded and marked ⚠.</p>"
        f"{html_table(records)}<h2>Plots</h2>{figures_html}{IMAGE_CHECK}</body></html>\n"
    )


def render(directory: str | Path, records: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Write ``table.md``, the PNGs and ``report.html`` into ``directory``; return the report path.

    ``records`` (for example failures, which have no result file) are shown in the table beside
    the finished runs found under ``directory``.
    """
    directory = Path(directory)
    runs = collect(directory)
    finished = {r["recipe"] for _, r in runs}
    extra = [r for r in (records or []) if r.get("recipe") not in finished]
    all_records = [r for _, r in runs] + list(extra)
    images = {name: png_bytes(fig) for name, fig in figures(runs).items()}
    for name, png in images.items():
        write_atomic(directory / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
    table = markdown_table(all_records)
    write_atomic(directory / "table.md", lambda tmp: tmp.write_text(table))
    page = html_report(all_records, images)
    return write_atomic(directory / "report.html", lambda tmp: tmp.write_text(page))


def update_readme(readme: str | Path, directory: str | Path) -> Path:
    """Replace the table between the README's table markers with one built from ``directory``."""
    readme = Path(readme)
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ConfigError(
            f"{readme} has no table markers; add the lines {README_BEGIN} and {README_END}"
        )
    table = markdown_table([r for _, r in collect(directory)])
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    new = pattern.sub(lambda _: f"{README_BEGIN}\n{table}{README_END}", text)
    return write_atomic(readme, lambda tmp: tmp.write_text(new))
