r"""Recurrent spiking layer: :math:`v_t` driven by :math:`W_{in} x_t + W_{rec} s_{t-1}`.

The feed-forward part of all steps is one GEMM; only the recurrent product runs in the loop.
Used by recurrent SNNs and LSNNs (Bellec et al. 2018).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepspike.errors import ShapeError
from deepspike.neurons.base import NeuronModel


class RecurrentDense(nn.Module):
    """Dense recurrent layer ``[T, B, in] -> [T, B, out]`` around any neuron model."""

    def __init__(self, in_features: int, out_features: int, model: NeuronModel, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.model = model
        self.input = nn.Linear(in_features, out_features, bias=bias)
        self.recurrent = nn.Linear(out_features, out_features, bias=False)
        bound = 1.0 / math.sqrt(out_features)
        nn.init.uniform_(self.recurrent.weight, -bound, bound)
        with torch.no_grad():
            self.recurrent.weight.fill_diagonal_(0.0)

    def forward(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"RecurrentDense({self.in_features}, {self.out_features}) got shape "
                f"{list(x.shape)}; it needs [T, B, {self.in_features}]"
            )
        drive = self.input(x)
        if state is None:
            state = self.model.initial_state(drive[0])
        s = torch.zeros_like(drive[0])
        spikes = []
        for d_t in drive:
            s, state = self.model.step(d_t + self.recurrent(s), state)
            spikes.append(s)
        return torch.stack(spikes)
