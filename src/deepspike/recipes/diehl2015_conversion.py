r"""``diehl2015-conversion-fc`` and ``diehl2015-conversion-cnn``: ANN-to-SNN conversion with
weight normalisation (Diehl, Neil, Binas, Cook, Liu & Pfeiffer 2015, *Fast-classifying,
high-accuracy spiking deep networks through weight and threshold balancing*, IJCNN).

The paper trains ReLU networks without biases (so a ReLU maps onto an IF neuron whose rate is
proportional to its input), with dropout, then rescales the weights layer by layer by the
maximum activation seen on the training set (*data-based normalisation*): every IF neuron
(threshold 1) then fires at most once per step and none saturates.

* ``-fc``: 784-1200-1200-10 (Table I: 98.60 %);
* ``-cnn``: 28x28-12C5-P2-64C5-P2-10 with 2x2 average pooling (Table I: 99.10 %). On the 8x8
  digits the 5x5 kernels become 3x3 with zero padding, so the maps stay 8-4-4-2 pixels wide.

Beyond the paper, the CNN trains with the **quantisation-clip-floor-shift (QCFS) activation**
of Bu et al. (2022) and converts with its learned clip as the threshold and half-charged
neurons, which brings the SNN to the ANN's accuracy within a few tens of steps
(``--set activation=relu normalisation=max`` restores the paper's method). Both report the
first ``T`` at which the SNN is within 0.1 % of its ANN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from deepspike.recipes._conversion_common import (
    ACTIVATION_DEFAULTS,
    CONVERSION_DEFAULTS,
    activation,
    conv_geometry,
    conversion_recipe,
    flat_features,
)
from deepspike.recipes.registry import Paper, Recipe, register

DIEHL = "Diehl et al. 2015"
URL = "https://doi.org/10.1109/IJCNN.2015.7280696"


def build_fc(config: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Sequential:
    """784-H-H-10 ReLU (or QCFS) MLP without biases, with dropout on the hidden layers."""
    hidden, p = config["hidden"], config["dropout"]
    return nn.Sequential(
        nn.Flatten(),
        nn.Dropout(config["input_dropout"]),
        nn.Linear(math.prod(shape), hidden, bias=False),
        activation(config),
        nn.Dropout(p),
        nn.Linear(hidden, hidden, bias=False),
        activation(config),
        nn.Dropout(p),
        nn.Linear(hidden, 10, bias=False),
    )


def build_cnn(config: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Sequential:
    """12C5-P2-64C5-P2-10 without biases: 2x2 average pooling, dropout before the classifier."""
    kernel, pad = conv_geometry(shape[-1])
    c1, c2 = config["channels"]
    features = nn.Sequential(
        nn.Conv2d(shape[0], c1, kernel, padding=pad, bias=False),
        activation(config),
        nn.AvgPool2d(2),
        nn.Conv2d(c1, c2, kernel, padding=pad, bias=False),
        activation(config),
        nn.AvgPool2d(2),
        nn.Flatten(),
    )
    n = flat_features(features, shape)
    return nn.Sequential(*features, nn.Dropout(config["dropout"]), nn.Linear(n, 10, bias=False))


FC_ACCURACY = {"mnist": 98.60}
#: Training settings of the MLPs on the 1,437 digits (few steps per epoch: less dropout).
SMALL_MLP = {"input_dropout": 0.0, "dropout": 0.2, "lr": 3e-3, "batch_size": 64, "shift": 0}
SMALL_CNN = {"dropout": 0.2, "lr": 1e-2, "batch_size": 64, "shift": 0}
CNN_ACCURACY = {"mnist": 99.10}

fc_train, fc_evaluate = conversion_recipe(
    build_fc,
    channels=False,
    techniques=(
        "no biases, dropout (Diehl 2015)",
        "data-based max normalisation (Diehl 2015)",
    ),
    paper_accuracy=FC_ACCURACY,
)

cnn_train, cnn_evaluate = conversion_recipe(
    build_cnn,
    channels=True,
    techniques=(
        "no biases, dropout, average pooling (Diehl 2015)",
        "QCFS activation training, learned thresholds, half-charged IF neurons (Bu et al. 2022)",
        "reset by subtraction, analog input current (Rueckauer et al. 2017)",
    ),
    paper_accuracy=CNN_ACCURACY,
)

FC = register(
    Recipe(
        id="diehl2015-conversion-fc",
        title="784-1200-1200-10 MLP, ANN-to-SNN conversion (data-based normalisation)",
        paper=Paper(cite=DIEHL, row="Diehl 2015, FC conversion", accuracy=FC_ACCURACY, url=URL),
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
            "lr": 1e-3,
            "shift": 1,
            "normalisation": "max",
            "reset": "zero",
            "input": "rate",
            "readout": "spikes",
            "timesteps": 128,
            "max_timesteps": 256,
        },
        smoke={
            **SMALL_MLP,
            "hidden": 128,
            "epochs": 15,
            "shift": 0,
            "timesteps": 64,
            "max_timesteps": 64,
        },
        quick={**SMALL_MLP, "hidden": 400, "epochs": 10},
        train=fc_train,
        evaluate=fc_evaluate,
    )
)

CNN = register(
    Recipe(
        id="diehl2015-conversion-cnn",
        title="12C5-P2-64C5-P2-10 CNN, ANN-to-SNN conversion (QCFS-trained)",
        paper=Paper(cite=DIEHL, row="Diehl 2015, CNN conversion", accuracy=CNN_ACCURACY, url=URL),
        method="ANN-to-SNN conversion",
        local_learning=False,
        group="spiking CNN",
        datasets=("mnist", "digits"),
        defaults={
            **CONVERSION_DEFAULTS,
            **ACTIVATION_DEFAULTS,
            "channels": (12, 64),
            "input_dropout": 0.0,
            "dropout": 0.3,
            "activation": "qcfs",
            "qcfs_levels": 4,
            "qcfs_threshold": 2.0,
            "epochs": 15,
            "lr": 3e-3,
            "shift": 2,
            "normalisation": "trained",
            "timesteps": 32,
            "max_timesteps": 128,
        },
        smoke={**SMALL_CNN, "epochs": 12, "timesteps": 16, "max_timesteps": 32},
        quick={**SMALL_CNN, "epochs": 10},
        train=cnn_train,
        evaluate=cnn_evaluate,
    )
)
