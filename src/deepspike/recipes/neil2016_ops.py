r"""``neil2016-ops``: accuracy against operations of a converted 784-1200-1200-10 network, the
review's Fig. 3 (Neil, Pfeiffer & Liu 2016, *Learning to be efficient: algorithms for training
low-latency, low-compute deep spiking neural networks*, ACM SAC; Table I: 98.00 % on MNIST).

Neil et al. trained and converted hundreds of networks and plotted each one's accuracy against
the total number of operations spent during inference, with the ANN's operations for one
inference for comparison. This recipe trains one ANN (as ``diehl2015-conversion-fc``) and
converts it under a grid of settings (normalisation method x input rate x firing threshold).
One run of each SNN gives its accuracy and its cumulative synaptic operations after every
step (:func:`deepspike.conversion.simulate`), i.e. its whole accuracy-operations curve. The
recipe's own accuracy and cost are those of its default setting at ``timesteps``.

``extra["ops_figure"]`` holds the figure's data: the ANN's MACs per inference, the target
accuracy, and per setting the curve and the first point reaching the target (98 % on MNIST).
:func:`render_ops_figure` draws it (PNG) and saves the data next to it (JSON); ``deepspike
train`` does so into the run directory, as ``ops_figure.png`` and ``ops_figure.json``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from deepspike.conversion import AnnGraph, convert, parse_ann, simulate
from deepspike.errors import ConfigError
from deepspike.io.atomic import write_atomic
from deepspike.io.results import write_json_atomic
from deepspike.recipes._conversion_common import (
    ACTIVATION_DEFAULTS,
    CONVERSION_DEFAULTS,
    Data,
    calibration_set,
    conversion_config,
    conversion_recipe,
)
from deepspike.recipes.diehl2015_conversion import SMALL_MLP, build_fc
from deepspike.recipes.registry import Context, Paper, Recipe, register

ACCURACY = {"mnist": 98.00}
FIGURE_FILE = "ops_figure.png"


def curve_steps(timesteps: int, per_octave: int = 4) -> list[int]:
    """About ``per_octave`` log-spaced steps per doubling from 1 to ``timesteps``."""
    points = {1, timesteps}
    for k in range(per_octave * max(1, timesteps.bit_length())):
        points.add(min(timesteps, round(2 ** (k / per_octave))))
    return sorted(points)


def setting_label(normalisation: str, input_rate: float, threshold: float) -> str:
    return f"{normalisation}, input rate {input_rate:g}, threshold {threshold:g}"


def sweep_setting(
    ctx: Context,
    graph: AnnGraph,
    data: Data,
    normalisation: str,
    input_rate: float,
    threshold: float,
) -> dict[str, Any]:
    """Convert with one setting and return its accuracy-operations curve."""
    c = ctx.config
    (x_train, _), (x_test, y_test) = data
    options = {
        **c,
        "normalisation": normalisation,
        "threshold": threshold,
        "input": "rate",
        "max_rate": input_rate,
    }
    config = conversion_config(options)
    snn = convert(graph, calibration_set(x_train, c["n_calibration"]), config, ctx.generator)
    n = c["sweep_n_test"] or len(x_test)
    course = simulate(
        snn,
        x_test[:n],
        y_test[:n],
        timesteps=c["sweep_timesteps"],
        input="rate",
        max_rate=input_rate,
        batch_size=c["eval_batch"],
        generator=ctx.generator,
    )
    steps = curve_steps(course.timesteps)
    reached = course.first_step_reaching(c["target_accuracy"])
    return {
        "label": setting_label(normalisation, input_rate, threshold),
        "normalisation": normalisation,
        "input_rate": input_rate,
        "threshold": threshold,
        "n_test": n,
        "timesteps": steps,
        "accuracy": [round(course.accuracy_at(t), 4) for t in steps],
        "synops": [course.synops_at(t) for t in steps],
        "target_reached": None
        if reached is None
        else {
            "timesteps": reached,
            "accuracy": round(course.accuracy_at(reached), 4),
            "synops": course.synops_at(reached),
        },
    }


def sweep(ctx: Context, ann: nn.Module, data: Data, extra: dict[str, Any]) -> dict[str, Any]:
    """The figure's data over every setting of the grid; the figure goes into the run's
    directory (``ctx.out_dir``) when there is one."""
    c = ctx.config
    graph = parse_ann(ann, data[0][0][:2])
    grid = itertools.product(
        c["sweep_normalisations"], c["sweep_input_rates"], c["sweep_thresholds"]
    )
    settings = [sweep_setting(ctx, graph, data, *point) for point in grid]
    figure = {
        "ann_macs_per_sample": extra["ann_macs_per_sample"],
        "ann_accuracy": extra["ann_accuracy"],
        "target_accuracy": c["target_accuracy"],
        "settings": settings,
    }
    if ctx.out_dir is not None:
        render_ops_figure({"ops_figure": figure}, Path(ctx.out_dir) / FIGURE_FILE)
    return {"ops_figure": figure}


def render_ops_figure(extra: Mapping[str, Any], path: str | Path) -> Path:
    """Draw the review's Fig. 3 from a run's ``extra`` (or its ``ops_figure`` alone) to the PNG
    ``path``, and save the plotted data next to it as JSON (same name, ``.json``).

    Accuracy (y) against synaptic operations per inference (x, log scale) for every setting;
    a marker where each first reaches the target accuracy; a vertical line at the ANN's MACs
    for one inference. Returns the PNG's path.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = extra.get("ops_figure", extra)
    if "settings" not in figure:
        raise ConfigError("no ops_figure data: pass the extra of a neil2016-ops run")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    target = figure["target_accuracy"]
    styles = ("-", "--", ":", "-.")
    colours = list(dict.fromkeys((s["normalisation"], s["input_rate"]) for s in figure["settings"]))
    dashes = list(dict.fromkeys(s["threshold"] for s in figure["settings"]))
    palette = matplotlib.colormaps["tab10"]
    for setting in figure["settings"]:
        points = [
            (ops, acc)
            for ops, acc in zip(setting["synops"], setting["accuracy"], strict=True)
            if ops > 0
        ]
        if not points:
            continue
        colour = palette(colours.index((setting["normalisation"], setting["input_rate"])) % 10)
        style = styles[dashes.index(setting["threshold"]) % len(styles)]
        ops, acc = zip(*points, strict=True)
        ax.plot(ops, acc, style, color=colour, lw=1.3, label=setting["label"])
        hit = setting["target_reached"]
        if hit is not None:
            ax.plot(hit["synops"], hit["accuracy"], "o", color=colour, ms=6)
    ann_ops = figure["ann_macs_per_sample"]
    ax.axvline(ann_ops, color="k", ls="--", lw=1, label=f"ANN, one inference ({ann_ops:.3g} MACs)")
    ax.axhline(target, color="grey", ls=":", lw=1, label=f"{target:g} % (dots: first reached)")
    ax.set_xscale("log")
    low = min(target - 10, min(min(s["accuracy"]) for s in figure["settings"]))
    ax.set_ylim(max(low, 0), 100)
    ax.set_xlabel("synaptic operations per inference")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Converted SNN: accuracy vs operations (after Neil et al. 2016)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    write_json_atomic(path.with_suffix(".json"), figure)
    return path


train, evaluate = conversion_recipe(
    build_fc,
    channels=False,
    techniques=(
        "no biases, dropout (Diehl 2015)",
        "accuracy-operations curves over conversion settings (Neil et al. 2016)",
    ),
    paper_accuracy=ACCURACY,
    extend=sweep,
)

RECIPE = register(
    Recipe(
        id="neil2016-ops",
        title="784-1200-1200-10 conversion: accuracy vs operations (review Fig. 3)",
        paper=Paper(
            cite="Neil, Pfeiffer & Liu 2016",
            row="Neil 2016, conversion optimised for operations",
            accuracy=ACCURACY,
            url="https://doi.org/10.1145/2851613.2851724",
        ),
        method="ANN-to-SNN conversion",
        local_learning=False,
        group="fully connected",
        datasets=("mnist", "digits"),
        defaults={
            **CONVERSION_DEFAULTS,
            **ACTIVATION_DEFAULTS,
            "hidden": 1200,
            "input_dropout": 0.1,
            "dropout": 0.3,
            "epochs": 20,
            "shift": 1,
            "normalisation": "percentile",
            "input": "rate",
            "timesteps": 64,
            "max_timesteps": 256,
            "sweep_normalisations": ("max", "percentile", "threshold-balancing"),
            "sweep_input_rates": (1.0, 0.5),
            "sweep_thresholds": (1.0, 2.0),
            "sweep_timesteps": 256,
            "sweep_n_test": 1000,
            "target_accuracy": 98.0,
        },
        smoke={
            **SMALL_MLP,
            "hidden": 128,
            "epochs": 15,
            "shift": 0,
            "timesteps": 32,
            "max_timesteps": 64,
            "sweep_normalisations": ("max", "percentile"),
            "sweep_input_rates": (1.0,),
            "sweep_thresholds": (1.0,),
            "sweep_timesteps": 64,
            "target_accuracy": 85.0,
        },
        quick={
            **SMALL_MLP,
            "hidden": 400,
            "epochs": 10,
            "sweep_n_test": 0,
            "target_accuracy": 95.0,
        },
        train=train,
        evaluate=evaluate,
    )
)
