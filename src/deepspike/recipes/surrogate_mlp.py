r"""``surrogate-lif-mlp``: a two-layer LIF network trained by surrogate-gradient BPTT.

The reference recipe of the foundation (Neftci, Mostafa & Zenke 2019, *Surrogate gradient
learning in spiking neural networks*): rate-coded input, one hidden layer of LIF neurons with
reset by subtraction, an LIF output layer, cross-entropy on output spike counts, Adam, and the
fast-sigmoid surrogate :math:`\sigma'(x) = 1/(1+\alpha|x|)^2` (Zenke & Ganguli 2018).
It runs on the embedded digits data in seconds, so ``deepspike train`` and ``deepspike bench``
work offline from the first install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from deepspike import training
from deepspike.layers import Flatten, Linear
from deepspike.metrics import spike_raster
from deepspike.neurons import LIFParams, Neuron
from deepspike.recipes.common import image_split, make_encoder
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register
from deepspike.surrogate import FastSigmoid


def build(config: Mapping[str, Any], n_inputs: int, n_classes: int = 10) -> nn.Sequential:
    lif = LIFParams(tau_mem=config["tau_mem"], surrogate=FastSigmoid(config["surrogate_alpha"]))
    return nn.Sequential(
        Flatten(),
        Linear(n_inputs, config["hidden"]),
        Neuron(lif),
        Linear(config["hidden"], n_classes),
        Neuron(lif),
    )


def _data(ctx: Context):
    train = image_split(ctx, "train", ctx.config["n_train"])
    test = image_split(ctx, "test", ctx.config["n_test"])
    return train, test


def _outcome(ctx, model, test, n_train, extra) -> Outcome:
    encode = make_encoder(ctx.config["encoding"], ctx.config["timesteps"])
    acc, cost = training.evaluate(
        model,
        encode,
        *test,
        batch_size=ctx.config["batch_size"],
        generator=ctx.generator,
        progress=ctx.progress,
    )
    raster = spike_raster(model, encode(test[0][:1], ctx.generator))
    return Outcome(
        accuracy=acc,
        cost=cost,
        timesteps=ctx.config["timesteps"],
        n_train=n_train,
        n_test=len(test[0]),
        tensors=model.state_dict(),
        extra={**extra, "raster": raster},
    )


def train(ctx: Context) -> Outcome:
    (x_train, y_train), test = _data(ctx)
    c = ctx.config
    model = build(c, x_train[0].numel())
    history = training.fit(
        model,
        make_encoder(c["encoding"], c["timesteps"]),
        x_train,
        y_train,
        epochs=c["epochs"],
        batch_size=c["batch_size"],
        lr=c["lr"],
        generator=ctx.generator,
        grad_clip=c["grad_clip"] or None,
        progress=ctx.progress,
    )
    extra = {"train_loss": history.loss, "train_accuracy": history.train_accuracy}
    return _outcome(ctx, model, test, len(x_train), extra)


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    _, test = _data(ctx)
    model = build(ctx.config, test[0][0].numel())
    model.load_state_dict(dict(tensors))
    return _outcome(ctx, model, test, 0, {})


RECIPE = register(
    Recipe(
        id="surrogate-lif-mlp",
        title="LIF MLP, surrogate-gradient BPTT",
        paper=Paper(
            cite="Neftci, Mostafa & Zenke 2019",
            row="surrogate-gradient learning (method reference; no Table I row)",
            url="https://arxiv.org/abs/1901.09948",
        ),
        method="surrogate-gradient BPTT",
        local_learning=False,
        group="fully connected",
        datasets=("digits", "mnist"),
        defaults={
            "hidden": 256,
            "timesteps": 16,
            "encoding": "rate",
            "tau_mem": 10.0,
            "surrogate_alpha": 10.0,
            "epochs": 30,
            "batch_size": 64,
            "lr": 2e-3,
            "grad_clip": 1.0,
            "n_train": 0,
            "n_test": 0,
        },
        smoke={"epochs": 8, "hidden": 128},
        quick={"epochs": 20},
        train=train,
        evaluate=evaluate,
    )
)
