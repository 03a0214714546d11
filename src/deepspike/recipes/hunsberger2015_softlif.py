r"""``hunsberger2015-softlif``: train with the soft-LIF rate, then run real LIF neurons
(Hunsberger & Eliasmith 2015, *Spiking deep networks with LIF neurons*, arXiv:1510.08829;
Table I: 98.37 % on MNIST).

The ANN's hidden units use the soft-LIF activation (:class:`deepspike.conversion.SoftLIF`): the
steady-state firing rate of an LIF neuron with membrane time constant :math:`\tau_{RC}` and
refractory period :math:`\tau_{ref}`, its corner at the threshold smoothed by a softplus of
width :math:`\gamma`, so that back-propagation sees a finite derivative. Noise on the activations
during training makes the network robust to the variability of spike trains. After training,
each soft-LIF unit becomes an LIF neuron with the same :math:`\tau_{RC}` and
:math:`\tau_{ref}` (simulated with step ``dt`` ms), fed the same current: no normalisation is
needed, because the LIF rate curve *is* the activation. The image is a constant input current;
the output layer is a non-spiking integrator.

The network is an MLP ``784-H-H-10`` (our choice; the paper's MNIST network is not reproduced).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from deepspike.conversion import SoftLIF
from deepspike.recipes._conversion_common import CONVERSION_DEFAULTS, conversion_recipe
from deepspike.recipes.diehl2015_conversion import SMALL_MLP
from deepspike.recipes.registry import Paper, Recipe, register

ACCURACY = {"mnist": 98.37}


def soft_lif(config: Mapping[str, Any]) -> SoftLIF:
    return SoftLIF(
        tau_rc=config["tau_rc"],
        tau_ref=config["tau_ref"],
        gamma=config["gamma"],
        amplitude=config["amplitude"],
        noise=config["noise"],
    )


def build(config: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Sequential:
    """784-H-H-10 with soft-LIF hidden units and dropout.

    The hidden layers' biases start at 1, the LIF threshold, so that every unit starts where its
    rate curve bends rather than deep below threshold, where the soft-LIF's slope vanishes.
    """
    hidden, p = config["hidden"], config["dropout"]
    model = nn.Sequential(
        nn.Flatten(),
        nn.Dropout(config["input_dropout"]),
        nn.Linear(math.prod(shape), hidden),
        soft_lif(config),
        nn.Dropout(p),
        nn.Linear(hidden, hidden),
        soft_lif(config),
        nn.Dropout(p),
        nn.Linear(hidden, 10),
    )
    for layer in (model[2], model[5]):
        nn.init.constant_(layer.bias, 1.0)
    return model


train, evaluate = conversion_recipe(
    build,
    channels=False,
    techniques=(
        "soft-LIF activation training (Hunsberger & Eliasmith 2015)",
        "training noise on the activations (Hunsberger & Eliasmith 2015)",
        "LIF neurons with the trained time constants, no normalisation",
    ),
    paper_accuracy=ACCURACY,
)

RECIPE = register(
    Recipe(
        id="hunsberger2015-softlif",
        title="784-H-H-10 MLP trained with soft-LIF, run with LIF neurons",
        paper=Paper(
            cite="Hunsberger & Eliasmith 2015",
            row="Hunsberger 2015, soft-LIF conversion",
            accuracy=ACCURACY,
            url="https://arxiv.org/abs/1510.08829",
        ),
        method="ANN-to-SNN conversion (soft-LIF training)",
        local_learning=False,
        group="fully connected",
        datasets=("mnist", "digits"),
        defaults={
            **CONVERSION_DEFAULTS,
            "hidden": 500,
            "tau_rc": 20.0,
            "tau_ref": 2.0,
            "gamma": 0.005,
            "amplitude": 20.0,
            "noise": 0.1,
            "dt": 1.0,
            "tau_syn": 0.0,
            "input_dropout": 0.0,
            "dropout": 0.2,
            "epochs": 30,
            "shift": 1,
            "normalisation": "none",
            "reset": "zero",
            "timesteps": 64,
            "max_timesteps": 128,
        },
        smoke={
            **SMALL_MLP,
            "hidden": 128,
            "epochs": 15,
            "shift": 0,
            "timesteps": 64,
            "max_timesteps": 64,
        },
        quick={**SMALL_MLP, "hidden": 400, "epochs": 12},
        train=train,
        evaluate=evaluate,
    )
)
