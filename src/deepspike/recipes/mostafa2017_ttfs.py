r"""``mostafa2017-ttfs``: temporal coding with exact spike-time gradients (Mostafa 2017).

H. Mostafa, *Supervised learning based on temporal coding in spiking neural networks*, IEEE
TNNLS 2018 (arXiv:1606.08165; Table I of the review: MNIST 97.14 %, 784-800-10).

Each neuron is a non-leaky IF neuron with exponentially decaying synaptic current that fires at
most once; in :math:`z = e^t` its first spike is
:math:`z_{out} = \sum_{i\in C} w_i z_i / (\sum_{i \in C} w_i - 1)` over its causal set
:math:`C` (see :mod:`deepspike.spiketime`). Training backpropagates the exact derivative of
that closed form, no surrogate: cross-entropy on :math:`-z_{out}` of the 10 output neurons
(the first to fire is the decision) plus :math:`K\sum_j \max(0, 1 - \sum_i w_{ji})`.

Input: the image is binarised (``levels=2``) and each pixel spikes once, bright pixels at
:math:`t = 0` and dark ones at :math:`t = t_{max}` (``input_order=bright_first``; ``levels`` >
2 gives graded latencies). The full setting also translates training images by up to one
pixel (``augment_shift=1``), a regulariser the paper does not use. The ``smoke`` and ``quick``
settings on the 8x8 digits keep 8 grey levels (``levels=8``): binarising so few pixels loses
too much of the digit. The cost report counts one
accumulate per input spike that reaches a neuron before the neuron fires
(:func:`deepspike.spiketime.cost_report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from deepspike import spiketime, training
from deepspike.recipes.common import fit_options, image_split, random_shift
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register

OBJECTIVE = training.Objective(
    "spike_time_ce", spiketime.spike_time_cross_entropy, spiketime.predict_earliest
)


def build(config: Mapping[str, Any], n_inputs: int, n_classes: int = 10):
    sizes = (n_inputs, *config["hidden"], n_classes)
    return spiketime.SpikeTimeNet(sizes, config["init_mean"], config["init_std"])


def make_encoder(config: Mapping[str, Any]) -> training.Encoder:
    """Images to input spike times ``z = exp(t)`` ``[B, H*W]``."""
    return lambda x, g: spiketime.encode_times(
        x, config["t_max"], config["levels"], config["input_order"]
    )


def _data(ctx: Context):
    c = ctx.config
    return image_split(ctx, "train", c["n_train"]), image_split(ctx, "test", c["n_test"])


def _outcome(ctx: Context, model, test, n_train: int, extra: Mapping[str, Any]) -> Outcome:
    c = ctx.config
    encode = make_encoder(c)
    x, y = test
    acc = training.accuracy(
        model,
        encode,
        x,
        y,
        batch_size=c["batch_size"],
        generator=ctx.generator,
        predict_fn=spiketime.predict_earliest,
    )
    chunks = training.batches(len(x), c["batch_size"], None, shuffle=False)
    cost = spiketime.cost_report(model, (encode(x[idx], ctx.generator) for idx in chunks))
    return Outcome(
        accuracy=acc,
        cost=cost,
        timesteps=1,
        n_train=n_train,
        n_test=len(y),
        tensors=model.state_dict(),
        extra=dict(extra),
    )


def train(ctx: Context) -> Outcome:
    (x_train, y_train), test = _data(ctx)
    c = ctx.config
    model = build(c, x_train[0].numel())
    history = training.fit(
        model,
        make_encoder(c),
        x_train,
        y_train,
        generator=ctx.generator,
        loss_fn=OBJECTIVE,
        regularizer=lambda m: spiketime.weight_sum_cost(m, c["weight_sum_k"]),
        augment=random_shift(c["augment_shift"]),
        val_seed=ctx.seed,
        progress=ctx.progress,
        **fit_options(c),
    )
    n_train = len(y_train) - round(c["val_fraction"] * len(y_train))
    return _outcome(ctx, model, test, n_train, history.summary())


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    _, test = _data(ctx)
    model = build(ctx.config, test[0][0].numel())
    model.load_state_dict(dict(tensors))
    return _outcome(ctx, model, test, 0, {})


RECIPE = register(
    Recipe(
        id="mostafa2017-ttfs",
        title="784-800-10 single-spike IF network, exact spike-time gradients",
        paper=Paper(
            cite="Mostafa 2017",
            row="Feedforward FC: temporal backprop, exact gradient of first-spike times",
            accuracy={"mnist": 97.14},
            url="https://arxiv.org/abs/1606.08165",
        ),
        method="exact spike-time backprop (temporal coding)",
        local_learning=False,
        group="fully connected",
        datasets=("mnist", "digits"),
        defaults={
            "hidden": (800,),
            "t_max": 2.0,
            "levels": 2,
            "input_order": "bright_first",
            "init_mean": 4.0,
            "init_std": 1.0,
            "weight_sum_k": 1.0,
            "epochs": 30,
            "batch_size": 32,
            "lr": 1e-3,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "schedule": "cosine",
            "grad_clip": 1.0,
            "val_fraction": 0.0,
            "patience": 0,
            "augment_shift": 1,
            "n_train": 0,
            "n_test": 0,
        },
        smoke={"hidden": (128,), "epochs": 8, "augment_shift": 0, "levels": 8},
        quick={"hidden": (256,), "epochs": 20, "augment_shift": 0, "levels": 8},
        train=train,
        evaluate=evaluate,
    )
)
