r"""``lee2016-fc``: a deep fully connected LIF network trained by backpropagation.

Lee, Delbruck & Pfeiffer 2016, *Training deep spiking neural networks using backpropagation*,
Frontiers in Neuroscience 10:508 (Table I of the review: MNIST 98.88 %, N-MNIST 98.74 %). The
paper treats the membrane potential as the differentiable signal and backpropagates through it;
here that is surrogate-gradient BPTT (Wu et al. 2018 STBP; Zenke & Ganguli 2018; Neftci,
Mostafa & Zenke 2019): the spike :math:`s_t = H(v_t - \vartheta)` keeps the step forward and
uses :math:`\sigma'(x) = 1/(1 + \alpha|x|)^2` backward.

Network 784-800-10 (2312-800-10 on N-MNIST frames), LIF with reset by subtraction,

.. math::

    v_t = \beta v_{t-1} + W s^{in}_t, \quad s_t = H(v_t - 1), \quad v_t \leftarrow v_t - s_t,
    \qquad \beta = e^{-1/\tau_m},

Poisson (Bernoulli) rate-coded input over ``timesteps`` steps, and by default a non-spiking
leaky read-out trained with cross-entropy on its mean membrane (``loss=membrane_mean``; also
``membrane_max``, ``count_ce`` on output spike counts, ``count_mse`` to target rates). With few
steps and rate-coded input the network needs fewer synaptic operations per inference than the
equivalent ANN's multiply-accumulates (both reported in ``result.json``).

The full setting trains on elastically distorted images (``augment_elastic=24``, Simard,
Steinkraus & Platt 2003, who trained the same 784-800-10 shape this way) with dropout 0.2 on the
hidden spikes; the ``smoke`` and ``quick`` settings on the 8x8 digits use neither distortion nor
(smoke) dropout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from deepspike.layers import Flatten, Linear
from deepspike.recipes.common import evaluate_surrogate, lif_layer, readout, train_surrogate
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register


def build(config: Mapping[str, Any], sample_shape: tuple[int, ...], n_classes: int = 10):
    """``Flatten -> Linear(n_in, hidden) -> LIF -> [Dropout] -> Linear(hidden, 10) -> read-out``."""
    n_in = math.prod(sample_shape)
    hidden = config["hidden"]
    layers: list[nn.Module] = [Flatten(), Linear(n_in, hidden), lif_layer(config, (hidden,))]
    if config["dropout"]:
        layers.append(nn.Dropout(config["dropout"]))
    layers += [Linear(hidden, n_classes), readout(config, n_classes)]
    return nn.Sequential(*layers)


def train(ctx: Context) -> Outcome:
    return train_surrogate(ctx, build)


def evaluate(ctx: Context, tensors: Mapping[str, torch.Tensor]) -> Outcome:
    return evaluate_surrogate(ctx, tensors, build)


RECIPE = register(
    Recipe(
        id="lee2016-fc",
        title="784-800-10 LIF MLP, backprop through the membrane (surrogate BPTT)",
        paper=Paper(
            cite="Lee, Delbruck & Pfeiffer 2016",
            row="Feedforward FC: backprop, membrane potential as the differentiable signal",
            accuracy={"mnist": 98.88, "nmnist": 98.74},
            url="https://doi.org/10.3389/fnins.2016.00508",
        ),
        method="surrogate-gradient BPTT",
        local_learning=False,
        group="fully connected",
        datasets=("mnist", "digits", "nmnist"),
        defaults={
            "hidden": 800,
            "timesteps": 6,
            "encoding": "rate",
            "tau_mem": 4.0,
            "learn_tau": False,
            "surrogate_alpha": 5.0,
            "loss": "membrane_mean",
            "dropout": 0.2,
            "epochs": 40,
            "batch_size": 100,
            "lr": 3e-3,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "schedule": "cosine",
            "grad_clip": 1.0,
            "val_fraction": 0.0,
            "patience": 0,
            "augment_shift": 0,
            "augment_elastic": 24.0,
            "n_train": 0,
            "n_test": 0,
        },
        smoke={"epochs": 6, "hidden": 128, "augment_elastic": 0.0, "dropout": 0.0},
        quick={"epochs": 10, "hidden": 256, "augment_elastic": 0.0},
        train=train,
        evaluate=evaluate,
    )
)
