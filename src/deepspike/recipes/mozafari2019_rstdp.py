r"""``mozafari2019-rstdp``: a spiking deep CNN whose decision layer learns by reward-modulated STDP.

Mozafari, Ganjtabesh, Nowzari-Dalini, Thorpe & Masquelier (2019), *Bio-inspired digit
recognition using reward-modulated spike-timing-dependent plasticity in deep convolutional
networks*, Pattern Recognition 94, 87-95 (MNIST: 97.2 %); R-STDP after Mozafari et al. (2018),
IEEE TNNLS 29(12).

Protocol (machinery in :mod:`deepspike.recipes._conv_stdp`):

1. six DoG channels (ON/OFF at three scales, 3x3, 7x7, 13x13) and intensity-to-latency coding;
2. conv1 (30 maps 5x5, threshold 15, 5 winners, radius 3) and conv2 (250 maps 3x3, threshold 10,
   8 winners, radius 1) trained layer by layer by unsupervised STDP, each followed by max-pooling;
3. conv3: 200 decision neurons, 20 per class, trained by R-STDP
   (:func:`deepspike.learning.rstdp`): the neuron that fires first decides; a correct decision is
   rewarded (STDP, :math:`a_r^+ = 0.004`, :math:`a_r^- = -0.003`), a wrong one punished
   (anti-STDP, :math:`a_p^+ = 0.0005`, :math:`a_p^- = -0.004`); the rates are scaled each epoch by
   the previous epoch's miss and hit fractions, and half the decision maps are dropped out for
   each training image;
4. the class is that of the earliest spike in conv3 (ties and silent images go to the largest
   potential). No classifier is trained on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike import runtime
from deepspike.errors import ConfigError
from deepspike.learning import apply_update, earliest_first, rstdp_rows
from deepspike.metrics import CostMeter
from deepspike.recipes import _conv_stdp as conv
from deepspike.recipes import _stdp_common as common
from deepspike.recipes.common import image_split
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register

N_CLASSES = 10


def parse_scales(text: str) -> list[tuple[int, float, float]]:
    """``"3,0.33,0.67;7,0.78,1.56"`` -> ``[(3, 0.33, 0.67), (7, 0.78, 1.56)]`` (DoG scales)."""
    try:
        scales = [tuple(part.split(",")) for part in text.split(";") if part.strip()]
        return [(int(s), float(c), float(r)) for s, c, r in scales]
    except ValueError:
        raise ConfigError(
            f"dog_scales={text!r} must be 'size,sigma_center,sigma_surround;...'"
        ) from None


def specs(c: Mapping[str, Any]) -> list[conv.ConvSpec]:
    return [
        conv.ConvSpec(
            c["maps1"],
            c["kernel1"],
            c["threshold1"],
            c["kernel1"] // 2,
            c["k1"],
            c["radius1"],
            c["pool1"],
            c["pool1"],
            c["pool1_padding"],
        ),
        conv.ConvSpec(
            c["maps2"],
            c["kernel2"],
            c["threshold2"],
            c["kernel2"] // 2,
            c["k2"],
            c["radius2"],
            c["pool2"],
            c["pool2"],
            0,
        ),
        conv.ConvSpec(c["decision_maps"], c["kernel3"], c["threshold3"], 0, 1, 0, pool=0),
    ]


def build(c: Mapping[str, Any]) -> conv.ConvStack:
    if c["decision_maps"] % N_CLASSES:
        raise ConfigError(f"decision_maps={c['decision_maps']} must be a multiple of 10")
    return conv.ConvStack(2 * len(parse_scales(c["dog_scales"])), specs(c))


def front_end(c: Mapping[str, Any], images: torch.Tensor) -> torch.Tensor:
    return conv.latency_waves(conv.dog_maps(images, parse_scales(c["dog_scales"])), c["timesteps"])


def decide(v: torch.Tensor, threshold: float, keep: torch.Tensor | None = None):
    """The deciding neuron ``[B]`` of decision potentials ``v`` ``[T, B, maps, 1, 1]`` (earliest
    spike, then largest potential) and its spike step (``T - 1`` if silent)."""
    v = v.flatten(2)  # [T, B, maps]
    fired = (v >= threshold).to(v.dtype)
    times = conv.first_times(fired)
    silent = torch.full_like(times, float(v.shape[0] - 1))
    times = torch.where(torch.isfinite(times), times, silent)
    score = earliest_first(times, conv.value_at(v, times))
    if keep is not None:
        score = score.masked_fill(~keep, -torch.inf)
    winner = score.argmax(1)
    return winner, times.gather(1, winner.unsqueeze(1)).squeeze(1)


def classes_of(winners: torch.Tensor, maps: int) -> torch.Tensor:
    return winners // (maps // N_CLASSES)


@torch.no_grad()
def predict(c, stack: conv.ConvStack, images: torch.Tensor) -> torch.Tensor:
    out = []
    for i in range(0, len(images), c["batch_size_eval"]):
        v = stack(front_end(c, images[i : i + c["batch_size_eval"]]))
        out.append(classes_of(decide(v, c["threshold3"])[0], c["decision_maps"]))
    return torch.cat(out)


@torch.no_grad()
def decision_inputs(c, stack: conv.ConvStack, images: torch.Tensor) -> torch.Tensor:
    """The decision layer's input (conv2's pooled waves) of every image, as first spike steps
    ``uint8`` ``[N, maps2, H, W]`` (:func:`~deepspike.recipes._conv_stdp.wave_times`).

    The layers below are frozen while R-STDP trains the decision layer, so their output is
    computed once, not once per epoch.
    """
    layer, size = len(stack.convs) - 1, c["batch_size_eval"]
    out = None
    for i in range(0, len(images), size):
        times = conv.wave_times(stack.waves(front_end(c, images[i : i + size]), layer))
        if out is None:  # one buffer: small kept pieces would fragment the heap
            out = times.new_empty((len(images), *times.shape[1:]))
        out[i : i + len(times)] = times
    return out if out is not None else torch.zeros(0, dtype=torch.uint8)


def decision_potentials(
    times: torch.Tensor, conv3: torch.nn.Conv2d, steps: int, threshold: float
) -> torch.Tensor:
    """Potentials ``[T, B, maps]`` of the decision layer for input first-spike steps ``times``
    ``[B, C, k, k]`` (:func:`decision_inputs`); its kernel covers the whole input (one
    position), so :math:`V_t = W c_t` is a matrix product (the waves :math:`c_t` are
    cumulative: no sum over time).

    The weights are non-negative and the waves only grow, so potentials never decrease: when
    no neuron reaches ``threshold`` at the last step, none fires earlier, and the last step's
    potentials stand for every step (one product instead of ``T``; the decision is the same).
    """
    kernel = tuple(conv3.weight.shape[2:])
    if tuple(times.shape[2:]) != kernel:
        raise ConfigError(
            f"the decision layer's kernel {kernel} must cover its input "
            f"{tuple(times.shape[2:])}; set kernel3 to conv2's pooled output size"
        )
    weight = conv3.weight.detach().flatten(1)
    last = (times.flatten(1) < steps).to(weight.dtype) @ weight.T
    if bool((last < threshold).all()):
        return last.expand(steps, *last.shape)
    return conv.waves_at(times, steps).flatten(2) @ weight.T


def _rstdp_epoch(ctx, stack, inputs, y, rates) -> tuple[int, int]:
    """One epoch of R-STDP on the decision layer, on ``inputs`` from :func:`decision_inputs`;
    returns (hits, misses). Only the deciding neuron's weights change (:func:`rstdp_rows`)."""
    c, layer = ctx.config, len(stack.convs) - 1
    conv3, spec = stack.convs[layer], stack.specs[layer]
    optimizer = torch.optim.SGD([conv3.weight], lr=1.0)
    hits = misses = 0
    for idx in conv.batches(len(inputs), c["batch_size"], ctx.generator):
        with torch.no_grad():
            times = inputs[idx]
            v = decision_potentials(times, conv3, c["timesteps"], spec.threshold)
            keep = torch.rand(len(idx), spec.maps, generator=ctx.generator) >= c["dropout"]
            winner, t = decide(v, spec.threshold, keep)
            reward = torch.where(classes_of(winner, spec.maps) == y[idx], 1.0, -1.0)
            pre = (times.flatten(1) <= t.unsqueeze(1)).float()  # inputs fired by step t
            post = F.one_hot(winner, spec.maps).float()
            delta = rstdp_rows(pre, post, conv3.weight.detach().flatten(1), reward, *rates)
        apply_update(conv3.weight, delta.rows, optimizer, (0.0, 1.0), delta.units)
        hits += int((reward > 0).sum())
        misses += int((reward < 0).sum())
    return hits, misses


def _train_decision(ctx, stack, x, y) -> dict[str, Any]:
    c = ctx.config
    rewarded, punished = (c["a_r_plus"], c["a_r_minus"]), (c["a_p_plus"], c["a_p_minus"])
    hit_rate, history = 0.5, []
    inputs = decision_inputs(c, stack, x)
    for _ in tqdm(range(c["rstdp_epochs"]), desc="R-STDP", disable=not ctx.progress):
        miss_rate = 1.0 - hit_rate
        rates = (
            tuple(a * miss_rate for a in rewarded),
            tuple(a * hit_rate for a in punished),
        )
        hits, misses = _rstdp_epoch(ctx, stack, inputs, y, rates)
        hit_rate = hits / max(hits + misses, 1)
        history.append(round(100.0 * hit_rate, 2))
    return {"rstdp_train_accuracy": history}


def train(ctx: Context) -> Outcome:
    runtime.return_freed_memory()  # see deepspike.runtime: the heap would fragment
    with common.torch_threads(ctx.config["threads"]):
        return _train(ctx)


def _train(ctx: Context) -> Outcome:
    c = ctx.config
    x_train, y_train = image_split(ctx, "train", c["n_train"])
    test_set = image_split(ctx, "test", c["n_test"])
    stack = build(c)
    stack.initialise(ctx.generator)
    stats: dict[str, Any] = {}
    schedule = conv.Schedule(c["a_plus"], c["a_minus"], c["double_every"], c["a_plus_max"])
    for layer, budget in enumerate((c["images_layer1"], c["images_layer2"])):
        stats[f"layer{layer + 1}"] = conv.train_layer(
            stack,
            layer,
            lambda idx: front_end(c, x_train[idx]),
            len(x_train),
            budget,
            c["batch_size"],
            schedule,
            ctx.generator,
            ctx.progress,
        )
    stats.update(_train_decision(ctx, stack, x_train, y_train))
    accuracy, cost = _measure(ctx, stack, test_set)
    return common.outcome(
        accuracy,
        cost,
        timesteps=c["timesteps"],
        n_train=len(x_train),
        n_test=len(test_set[0]),
        tensors=stack.state_dict(),
        extra=stats,
    )


def _measure(ctx: Context, stack: conv.ConvStack, test_set) -> tuple[float, Any]:
    x_test, y_test = test_set
    with CostMeter(stack) as meter:
        predictions = predict(ctx.config, stack, x_test)
    return common.percent_correct(predictions, y_test), meter.report(samples=len(x_test))


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    runtime.return_freed_memory()  # see deepspike.runtime: the heap would fragment
    with common.torch_threads(ctx.config["threads"]):
        c = ctx.config
        test_set = image_split(ctx, "test", c["n_test"])
        stack = build(c)
        stack.load_state_dict(dict(tensors))
        accuracy, cost = _measure(ctx, stack, test_set)
        return common.outcome(
            accuracy,
            cost,
            timesteps=c["timesteps"],
            n_train=0,
            n_test=len(test_set[0]),
            tensors=dict(tensors),
        )


_DIGITS = {
    "dog_scales": "3,0.5,1.0;5,1.0,2.0",
    "maps1": 16,
    "kernel1": 3,
    "threshold1": 6.0,
    "k1": 2,
    "radius1": 1,
    "pool1_padding": 0,
    "maps2": 64,
    "kernel2": 3,
    "threshold2": 8.0,
    "k2": 4,
    "radius2": 1,
    "pool2": 2,
    "decision_maps": 50,
    "kernel3": 2,
    "double_every": 100,
    "a_r_plus": 0.04,
    "a_r_minus": -0.03,
    "a_p_plus": 0.005,
    "a_p_minus": -0.04,
}

RECIPE = register(
    Recipe(
        id="mozafari2019-rstdp",
        title="Spiking deep CNN, STDP features + R-STDP decision layer (earliest spike)",
        paper=Paper(
            cite="Mozafari et al. 2019",
            row="reward-modulated STDP in a deep conv SNN (no Table I row; text: 97.2 %)",
            accuracy={"mnist": 97.2},
            url="https://doi.org/10.1016/j.patcog.2019.05.015",
        ),
        method="STDP conv layers + R-STDP decision layer",
        local_learning=True,
        group="spiking CNN",
        datasets=("mnist", "digits"),
        defaults={
            "timesteps": 15,
            "dog_scales": "3,0.3333,0.6667;7,0.7778,1.5556;13,1.4444,2.8889",
            "maps1": 30,
            "kernel1": 5,
            "threshold1": 15.0,
            "k1": 5,
            "radius1": 3,
            "pool1": 2,
            "pool1_padding": 1,
            "maps2": 250,
            "kernel2": 3,
            "threshold2": 10.0,
            "k2": 8,
            "radius2": 1,
            "pool2": 3,
            "decision_maps": 200,
            "kernel3": 5,
            "threshold3": 1e9,
            "a_plus": 0.004,
            "a_minus": -0.003,
            "double_every": 500,
            "a_plus_max": 0.15,
            "images_layer1": 60000,
            "images_layer2": 120000,
            "a_r_plus": 0.004,
            "a_r_minus": -0.003,
            "a_p_plus": 0.0005,
            "a_p_minus": -0.004,
            "dropout": 0.5,
            "rstdp_epochs": 30,
            "batch_size": 1,
            "batch_size_eval": 8,  # small batches keep [T, B, maps, H, W] in cache: 2x faster
            "n_train": 0,
            "n_test": 0,
            "threads": 1,
        },
        smoke={
            **_DIGITS,
            "images_layer1": 400,
            "images_layer2": 400,
            "rstdp_epochs": 12,
            "batch_size": 8,
            "n_train": 600,
            # 600 images give the decision layer few updates per epoch: larger R-STDP rates
            "a_r_plus": 0.1,
            "a_r_minus": -0.075,
            "a_p_plus": 0.0125,
            "a_p_minus": -0.1,
        },
        quick={**_DIGITS, "images_layer1": 1500, "images_layer2": 3000, "rstdp_epochs": 8},
        train=train,
        evaluate=evaluate,
    )
)
