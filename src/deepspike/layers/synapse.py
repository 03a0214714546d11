"""Synaptic layers on time-major tensors ``[T, B, ...]``.

Feed-forward layers have no state over time, so each folds time into the batch axis and does the
work of all ``T`` steps in one call: one GEMM over ``[T*B, in]`` for :class:`Linear`, one
convolution over ``[T*B, C, H, W]`` for :class:`Conv2d`. The metrics harness
(:mod:`deepspike.metrics`) recognises these classes to count synaptic operations.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepspike.errors import ShapeError


def fold_time(x: torch.Tensor, feature_dims: int, layer: str) -> tuple[torch.Tensor, int, int]:
    """Reshape ``[T, B, *features]`` to ``[T*B, *features]``; return it with ``T`` and ``B``."""
    if x.dim() != feature_dims + 2:
        raise ShapeError(
            f"{layer} got shape {list(x.shape)}; it needs a time-major "
            f"[T, B, {', '.join(['*'] * feature_dims)}] tensor "
            f"({feature_dims + 2} dims). Encode static inputs over time first "
            "(deepspike.encoding) or add a time axis with x.unsqueeze(0)"
        )
    t, b = x.shape[:2]
    return x.reshape(t * b, *x.shape[2:]), t, b


def unfold_time(y: torch.Tensor, t: int, b: int) -> torch.Tensor:
    return y.reshape(t, b, *y.shape[1:])


class Linear(nn.Linear):
    """Dense synapses :math:`y_t = W x_t + b`, all steps at once: ``[T, B, in] -> [T, B, out]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}) got shape {list(x.shape)}; "
                f"it needs [T, B, {self.in_features}]"
            )
        return F.linear(x, self.weight, self.bias)


class Conv2d(nn.Conv2d):
    """2-D convolution applied to every step: ``[T, B, C, H, W] -> [T, B, C', H', W']``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, f"Conv2d({self.in_channels}, {self.out_channels})")
        if flat.shape[1] != self.in_channels:
            raise ShapeError(
                f"Conv2d({self.in_channels}, {self.out_channels}) got shape {list(x.shape)}; "
                f"it needs [T, B, {self.in_channels}, H, W]"
            )
        return unfold_time(super().forward(flat), t, b)


class MaxPool2d(nn.MaxPool2d):
    """Spike-gated max-pooling: on binary spikes a unit fires when any input in its window
    fires, and the gradient is routed to that input. ``[T, B, C, H, W]`` in and out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, "MaxPool2d")
        return unfold_time(super().forward(flat), t, b)


class AvgPool2d(nn.AvgPool2d):
    """Average pooling on every step (a linear layer: its output feeds the next neurons)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, "AvgPool2d")
        return unfold_time(super().forward(flat), t, b)


class Flatten(nn.Module):
    """``[T, B, *features] -> [T, B, prod(features)]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ShapeError(f"Flatten got shape {list(x.shape)}; it needs [T, B, ...]")
        return x.flatten(2)
