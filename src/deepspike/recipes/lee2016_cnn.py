r"""``lee2016-cnn``: a spiking CNN trained by backpropagation.

Lee, Delbruck & Pfeiffer 2016, *Training deep spiking neural networks using backpropagation*,
Frontiers in Neuroscience 10:508 (Table I of the review: MNIST 99.31 %, N-MNIST 98.30 %).
Architecture ``28x28-20C5-P2-50C5-P2-200-10``: two 5x5 convolutions of 20 and 50 LIF feature
maps, each followed by 2x2 spike max-pooling, a 200-neuron LIF layer and 10 outputs. Training is
surrogate-gradient BPTT as in :mod:`deepspike.recipes.lee2016_fc`.

The full setting is the paper's (``padding=0``: 28 -> 24 -> 12 -> 8 -> 4, so 50x4x4 = 800 inputs
to the 200-neuron layer; on 34x34 N-MNIST frames 34 -> 30 -> 15 -> 11 -> 5). On the embedded 8x8
digits a 5x5 valid convolution leaves no room for two poolings, so the ``smoke`` and ``quick``
settings use ``padding=2`` ("same" convolutions: 8 -> 8 -> 4 -> 4 -> 2).

By default the image enters the first convolution as an analog current (``encoding=direct``):
the first layer then costs MACs, every later layer only accumulates on spikes. The read-out is a
non-spiking leaky integrator trained with cross-entropy on its mean membrane. The full setting
uses ``T = 4`` steps and translates training images by up to one pixel (``augment_shift=1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from deepspike.errors import ShapeError
from deepspike.layers import Conv2d, Flatten, Linear, MaxPool2d
from deepspike.recipes.common import evaluate_surrogate, lif_layer, readout, train_surrogate
from deepspike.recipes.registry import Context, Outcome, Paper, Recipe, register


class AddChannel(nn.Module):
    """``[T, B, H, W] -> [T, B, 1, H, W]`` for grey images; ``[T, B, C, H, W]`` passes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x.unsqueeze(2)
        if x.dim() == 5:
            return x
        raise ShapeError(
            f"the spiking CNN got shape {list(x.shape)}; it needs [T, B, H, W] or [T, B, C, H, W]"
        )


def conv_out(size: int, kernel: int, padding: int) -> int:
    """Side of a stride-1 convolution's output: :math:`n + 2p - k + 1`."""
    return size + 2 * padding - kernel + 1


def feature_shapes(config: Mapping[str, Any], sample_shape: tuple[int, ...]):
    """Per-sample shapes ``(C, H, W)`` after each convolution and each pooling."""
    channels = 1 if len(sample_shape) == 2 else sample_shape[0]
    h, w = sample_shape[-2:]
    k, p = config["kernel"], config["padding"]
    shapes = []
    for c_out in config["channels"]:
        h, w = conv_out(h, k, p), conv_out(w, k, p)
        if h < 2 or w < 2:
            raise ShapeError(
                f"a {h}x{w} feature map is too small to pool; raise padding (e.g. --set "
                f"padding=2) for {sample_shape[-2]}x{sample_shape[-1]} inputs"
            )
        shapes.append((c_out, h, w))
        h, w = h // 2, w // 2
        shapes.append((c_out, h, w))
    return channels, shapes


def build(config: Mapping[str, Any], sample_shape: tuple[int, ...], n_classes: int = 10):
    """``[conv k x k -> LIF -> max-pool 2] x len(channels) -> FC(hidden) -> LIF -> FC(10) ->
    read-out``."""
    c_in, shapes = feature_shapes(config, sample_shape)
    layers: list[nn.Module] = [AddChannel()]
    for i, c_out in enumerate(config["channels"]):
        conv_shape, _ = shapes[2 * i], shapes[2 * i + 1]
        layers += [
            Conv2d(c_in, c_out, config["kernel"], padding=config["padding"]),
            lif_layer(config, conv_shape),
            MaxPool2d(2),
        ]
        c_in = c_out
    c, h, w = shapes[-1]
    hidden = config["hidden"]
    layers += [Flatten(), Linear(c * h * w, hidden), lif_layer(config, (hidden,))]
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
        id="lee2016-cnn",
        title="28x28-20C5-P2-50C5-P2-200-10 spiking CNN, backprop (surrogate BPTT)",
        paper=Paper(
            cite="Lee, Delbruck & Pfeiffer 2016",
            row="Spiking CNN: backprop, membrane potential as the differentiable signal",
            accuracy={"mnist": 99.31, "nmnist": 98.30},
            url="https://doi.org/10.3389/fnins.2016.00508",
        ),
        method="surrogate-gradient BPTT",
        local_learning=False,
        group="spiking CNN",
        datasets=("mnist", "digits", "nmnist"),
        defaults={
            "channels": (20, 50),
            "kernel": 5,
            "padding": 0,
            "hidden": 200,
            "timesteps": 4,
            "encoding": "direct",
            "tau_mem": 4.0,
            "learn_tau": False,
            "surrogate_alpha": 5.0,
            "loss": "membrane_mean",
            "dropout": 0.0,
            "epochs": 12,
            "batch_size": 64,
            "lr": 2e-3,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "schedule": "cosine",
            "grad_clip": 1.0,
            "val_fraction": 0.0,
            "patience": 0,
            "augment_shift": 1,
            "augment_elastic": 0.0,
            "n_train": 0,
            "n_test": 0,
        },
        smoke={"padding": 2, "epochs": 6, "augment_shift": 0},
        quick={"padding": 2, "epochs": 6, "augment_shift": 0},
        train=train,
        evaluate=evaluate,
    )
)
