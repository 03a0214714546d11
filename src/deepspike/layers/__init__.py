"""Spiking layers on time-major tensors ``[T, B, ...]``."""

from deepspike.layers.competition import LateralInhibition, k_winners
from deepspike.layers.recompute import Recompute
from deepspike.layers.recurrent import RecurrentDense
from deepspike.layers.sequential import Sequential
from deepspike.layers.synapse import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d

SYNAPTIC_LAYERS = (Linear, Conv2d, RecurrentDense)

__all__ = [
    "SYNAPTIC_LAYERS",
    "AvgPool2d",
    "Conv2d",
    "Flatten",
    "LateralInhibition",
    "Linear",
    "MaxPool2d",
    "Recompute",
    "RecurrentDense",
    "Sequential",
    "k_winners",
]
