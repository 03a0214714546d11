"""Shared by the ANN-to-SNN conversion recipes: train the ANN, convert it, run the SNN over
time, and report accuracy and cost against the number of time steps.

Every conversion recipe has the settings of :data:`CONVERSION_DEFAULTS` (training, conversion
and evaluation) plus its own architecture settings, and is built by :func:`conversion_recipe`
from a function ``build(config, input_shape) -> nn.Module`` that returns the untrained ANN.
The checkpoint holds the ANN's ``state_dict``; ``evaluate`` converts it again.

What each run reports in ``result.json`` (``extra``):

* ``ann_accuracy``: the trained ANN's test accuracy;
* ``snn_accuracy_vs_T`` / ``synops_vs_T``: the SNN's accuracy and synaptic operations per
  sample after ``T`` steps, at powers of two up to ``max_timesteps`` and the chosen ``T``;
* ``first_T_within_0.1pct_of_ANN``: the first ``T`` (every step is checked) whose accuracy is
  within 0.1 percentage points of the ANN's; ``first_T_reaching_paper_accuracy`` likewise;
* ``scales`` (each layer's :math:`\\lambda`), ``conversion`` (the options), ``techniques``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike.conversion import QCFS, ConversionConfig, convert, first_within, simulate
from deepspike.errors import ConfigError, check_finite
from deepspike.recipes.common import image_split
from deepspike.recipes.registry import Context, Outcome
from deepspike.training import batches

log = logging.getLogger("deepspike")

#: Settings every conversion recipe has (a recipe overrides the values, never the keys).
CONVERSION_DEFAULTS: dict[str, Any] = {
    # the ANN's training
    "dropout": 0.0,
    "epochs": 10,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "shift": 0,
    # the conversion
    "normalisation": "percentile",
    "percentile": 99.9,
    "reset": "subtract",
    "threshold": 1.0,
    "input": "direct",
    "max_rate": 1.0,
    "readout": "membrane",
    "n_calibration": 2000,
    # the SNN's evaluation
    "timesteps": 32,
    "max_timesteps": 128,
    "eval_batch": 500,
    "n_train": 0,
    "n_test": 0,
}

#: Settings of recipes whose hidden activation is :func:`activation`'s.
ACTIVATION_DEFAULTS: dict[str, Any] = {
    "activation": "relu",
    "qcfs_levels": 8,
    "qcfs_threshold": 4.0,
}

#: Margin (percentage points) for ``first_T_within_0.1pct_of_ANN``.
ANN_MARGIN = 0.1

Build = Callable[[Mapping[str, Any], tuple[int, ...]], nn.Module]
Extend = Callable[[Context, nn.Module, "Data", dict[str, Any]], dict[str, Any]]
Data = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def activation(config: Mapping[str, Any]) -> nn.Module:
    """The hidden activation: ``relu``, or ``qcfs`` (Bu et al. 2022) with the configured levels
    and initial threshold."""
    kind = config["activation"]
    if kind == "relu":
        return nn.ReLU()
    if kind == "qcfs":
        return QCFS(config["qcfs_levels"], config["qcfs_threshold"])
    raise ConfigError(f"activation={kind!r} is unknown; choose relu or qcfs")


def conv_geometry(size: int) -> tuple[int, int]:
    """``(kernel, padding)``: the paper's valid 5x5 on MNIST-sized inputs, 'same' 3x3 on small
    ones (the 8x8 digits)."""
    return (5, 0) if size >= 16 else (3, 1)


def flat_features(features: nn.Module, shape: tuple[int, ...]) -> int:
    """Number of features ``features`` outputs per sample for inputs of ``shape``."""
    with torch.no_grad():
        return int(features(torch.zeros(1, *shape)).numel())


def load_data(ctx: Context, channels: bool) -> Data:
    """Train and test images (``[N, 1, H, W]`` if ``channels`` else ``[N, H, W]``) and labels."""
    c = ctx.config
    train = image_split(ctx, "train", c["n_train"])
    test = image_split(ctx, "test", c["n_test"])
    if channels:
        train, test = (train[0].unsqueeze(1), train[1]), (test[0].unsqueeze(1), test[1])
    return train, test


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image ``[B, ..., H, W]`` by a random whole number of pixels in
    ``[-max_shift, max_shift]`` along each axis, filling with zeros (data augmentation)."""
    if max_shift <= 0:
        return x
    b, (h, w) = x.shape[0], x.shape[-2:]
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b, 1), generator=generator)
    rows = (dy + torch.arange(h)).reshape(b, *([1] * (x.dim() - 3)), h, 1)
    cols = (dx + torch.arange(w)).reshape(b, *([1] * (x.dim() - 3)), 1, w)
    index = torch.arange(b).reshape(b, *([1] * (x.dim() - 1)))
    lead = [torch.arange(n).reshape(1, n, *([1] * (x.dim() - 2))) for n in x.shape[1:-2]]
    return padded[(index, *lead, rows, cols)]


def fit_ann(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: Mapping[str, Any],
    generator: torch.Generator,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``model`` with Adam, a cosine learning-rate schedule and cross-entropy; images are
    shifted at random by up to ``config["shift"]`` pixels. Returns the per-epoch history."""
    check_finite(x, "training input")
    epochs, size = config["epochs"], config["batch_size"]
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    steps = max(1, epochs * ((len(x) + size - 1) // size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    history: dict[str, list[float]] = {"loss": [], "train_accuracy": []}
    for epoch in range(1, epochs + 1):
        model.train()
        total, correct = 0.0, 0
        order = list(batches(len(x), size, generator, shuffle=True))
        for idx in tqdm(order, desc=f"ANN epoch {epoch}/{epochs}", disable=not progress):
            logits = model(random_shift(x[idx], config["shift"], generator))
            loss = F.cross_entropy(logits, y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        history["loss"].append(round(total / len(x), 5))
        history["train_accuracy"].append(round(100.0 * correct / len(x), 3))
        log.info(
            "ANN epoch %d/%d loss %.4f train %.2f%%",
            epoch,
            epochs,
            history["loss"][-1],
            history["train_accuracy"][-1],
        )
    return history


@torch.no_grad()
def ann_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Test accuracy of the ANN in percent."""
    model.eval()
    correct = sum(
        int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
        for i in range(0, len(x), batch)
    )
    return 100.0 * correct / max(len(x), 1)


def conversion_config(config: Mapping[str, Any]) -> ConversionConfig:
    """The :class:`ConversionConfig` of a recipe's settings."""
    return ConversionConfig(
        normalisation=config["normalisation"],
        percentile=config["percentile"],
        reset=config["reset"],
        threshold=config["threshold"],
        readout=config["readout"],
        input=config["input"],
        max_rate=config["max_rate"],
        dt=config.get("dt", 1.0),
        tau_syn=config.get("tau_syn", 0.0),
    )


def report_steps(max_timesteps: int, chosen: int) -> list[int]:
    """Powers of two up to ``max_timesteps``, plus ``chosen`` and ``max_timesteps``."""
    steps = {2**k for k in range(max_timesteps.bit_length()) if 2**k <= max_timesteps}
    return sorted(steps | {chosen, max_timesteps})


def calibration_set(x: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` training images (all when ``n`` is 0); neither data set is sorted by
    class, so they cover every class."""
    return x[: max(1, n)] if n else x


def evaluate_snn(
    ctx: Context, ann: nn.Module, data: Data, paper_accuracy: float | None
) -> tuple[float, Any, dict[str, Any]]:
    """Convert ``ann``, run it on the test set; return the SNN accuracy at the chosen ``T``, its
    :class:`CostReport` and the ``extra`` fields (see the module docstring)."""
    c = ctx.config
    (x_train, _), (x_test, y_test) = data
    chosen, longest = c["timesteps"], max(c["max_timesteps"], c["timesteps"])
    options = conversion_config(c)
    start = time.perf_counter()
    snn = convert(ann, calibration_set(x_train, c["n_calibration"]), options, ctx.generator)
    convert_seconds = time.perf_counter() - start
    course = simulate(
        snn,
        x_test,
        y_test,
        timesteps=longest,
        input=c["input"],
        max_rate=c["max_rate"],
        batch_size=c["eval_batch"],
        generator=ctx.generator,
        cost_timesteps=chosen,
        progress=ctx.progress,
    )
    ann_acc = ann_accuracy(ann, x_test, y_test)
    curve = course.curve(report_steps(longest, chosen))
    extra = {
        "ann_accuracy": round(ann_acc, 4),
        "snn_accuracy_vs_T": curve["accuracy"],
        "synops_vs_T": curve["synops"],
        "first_T_within_0.1pct_of_ANN": first_within(course, ann_acc, ANN_MARGIN),
        "first_T_reaching_paper_accuracy": (
            course.first_step_reaching(paper_accuracy) if paper_accuracy is not None else None
        ),
        "ann_macs_per_sample": course.cost.ann_macs,
        "max_timesteps": longest,
        "scales": {k: round(v, 6) for k, v in snn.scales.items()},
        "conversion": dataclasses.asdict(options),
        "convert_seconds": round(convert_seconds, 2),
    }
    log.info(
        "ANN %.2f%%; SNN %.2f%% at T=%d; within %.1f pp of the ANN from T=%s",
        ann_acc,
        course.accuracy_at(chosen),
        chosen,
        ANN_MARGIN,
        extra["first_T_within_0.1pct_of_ANN"],
    )
    return course.accuracy_at(chosen), course.cost, extra


def conversion_recipe(
    build: Build,
    *,
    channels: bool,
    techniques: tuple[str, ...],
    paper_accuracy: Mapping[str, float],
    extend: Extend | None = None,
) -> tuple[Callable[[Context], Outcome], Callable[[Context, Mapping[str, torch.Tensor]], Outcome]]:
    """The ``train`` and ``evaluate`` functions of a conversion recipe.

    Args:
        build: ``build(config, input_shape)`` -> the untrained ANN (input ``[B, *input_shape]``).
        channels: the ANN takes ``[B, 1, H, W]`` (a CNN) rather than ``[B, H, W]``.
        techniques: the named techniques used, reported in ``extra["techniques"]``.
        paper_accuracy: the paper's accuracy per data set.
        extend: optional ``extend(ctx, ann, data, extra) -> more extra fields`` (e.g. a sweep).
    """

    def outcome(ctx: Context, ann: nn.Module, data: Data, n_train: int, extra: dict) -> Outcome:
        accuracy, cost, snn_extra = evaluate_snn(ctx, ann, data, paper_accuracy.get(ctx.dataset))
        extra = {**extra, **snn_extra, "techniques": list(techniques)}
        if extend is not None:
            extra.update(extend(ctx, ann, data, extra))
        return Outcome(
            accuracy=accuracy,
            cost=cost,
            timesteps=ctx.config["timesteps"],
            n_train=n_train,
            n_test=len(data[1][0]),
            tensors={k: v.detach().clone() for k, v in ann.state_dict().items()},
            extra=extra,
        )

    def train(ctx: Context) -> Outcome:
        data = load_data(ctx, channels)
        (x_train, y_train), _ = data
        ann = build(ctx.config, tuple(x_train.shape[1:]))
        start = time.perf_counter()
        history = fit_ann(ann, x_train, y_train, ctx.config, ctx.generator, ctx.progress)
        extra = {
            "ann_train_seconds": round(time.perf_counter() - start, 2),
            "ann_train_loss": history["loss"],
            "ann_train_accuracy": history["train_accuracy"],
        }
        return outcome(ctx, ann, data, len(x_train), extra)

    def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
        data = load_data(ctx, channels)
        ann = build(ctx.config, tuple(data[0][0].shape[1:]))
        ann.load_state_dict(dict(tensors))
        return outcome(ctx, ann, data, 0, {})

    return train, evaluate
