r"""Rank-order coding (Thorpe & Gautrais 1998; Thorpe, Delorme & Van Rullen 2001).

Only the *order* in which the inputs of one sample fire carries information. Within each
sample (all non-batch axes together) the inputs are sorted by decreasing intensity; the input
of rank :math:`r = 0, 1, \dots, n_{\mathrm{active}} - 1` fires once, at step

.. math::

    t_r = \begin{cases}
        r & n_{\mathrm{active}} \le T \quad\text{(one spike per step)}\\
        \lfloor r \, T / n_{\mathrm{active}} \rfloor & n_{\mathrm{active}} > T
        \quad\text{(ranks binned into T steps)}
    \end{cases}

Inputs equal to zero never fire. Ties are broken by position (the earlier flat index fires
first), so the code is deterministic.

References: Thorpe, Delorme & Van Rullen (2001), "Spike-based strategies for rapid
processing", *Neural Networks* 14(6-7); Thorpe & Gautrais (1998), "Rank order coding",
*Computational Neuroscience*.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.encoding._checks import (
    as_tensor,
    check_dtype,
    check_min_dim,
    check_range,
    check_steps,
)
from deepspike.encoding.latency import times_to_spikes

__all__ = ["RankOrderEncoder", "rank_order", "rank_order_times"]


def rank_order_times(x: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """Spike step of every input under rank-order coding (float64, ``inf`` = never fires).

    Args:
        x: non-negative intensities ``[B, ...]`` (at least 2-D: batch then features).
        T: number of time steps; default: the number of features per sample, so every
            active input gets its own step.

    Returns:
        float64 tensor shaped like ``x`` holding integer steps in ``[0, T - 1]`` or ``inf``.
    """
    x = as_tensor(x, "x")
    check_min_dim(x, 2, "[B, ...] (batch first, then at least one feature axis)")
    check_range(x, 0.0, math.inf, "x")
    B = x.shape[0]
    n = math.prod(x.shape[1:])
    steps = n if T is None else check_steps(T)
    if n == 0 or B == 0:
        return torch.full(x.shape, math.inf, dtype=torch.float64, device=x.device)
    flat = x.reshape(B, n)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=x.device).expand(B, n).contiguous())
    active = flat > 0
    n_active = active.sum(dim=1, keepdim=True)
    binned = torch.div(ranks * steps, n_active.clamp(min=1), rounding_mode="floor")
    step = torch.where(n_active <= steps, ranks, binned).to(torch.float64)
    step = torch.where(active, step, torch.full_like(step, math.inf))
    return step.reshape(x.shape)


def rank_order(
    x: torch.Tensor, T: int | None = None, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Rank-order code: each non-zero input spikes once, in order of decreasing intensity.

    With ``T`` >= the number of active inputs one input fires per step; otherwise ranks are
    binned as ``floor(rank * T / n_active)`` (see the module docstring).

    Args:
        x: non-negative intensities ``[B, ...]``.
        T: number of steps; default ``x[0].numel()`` (features per sample).
        dtype: floating dtype of the output.

    Returns:
        spikes ``[T, B, ...]``, one spike per non-zero input, none for zeros.

    Raises:
        InputValueError: NaN/inf or negative values.
        ShapeError: ``x`` has fewer than 2 dimensions.
        ConfigError: ``T`` < 1.
    """
    dtype = check_dtype(dtype)
    times = rank_order_times(x, T)
    steps = max(1, math.prod(times.shape[1:])) if T is None else check_steps(T)
    return times_to_spikes(times, steps, dtype=dtype)


class RankOrderEncoder(nn.Module):
    """Module form of :func:`rank_order`."""

    def __init__(self, T: int | None = None, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.T = None if T is None else check_steps(T)
        self.dtype = check_dtype(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rank_order(x, self.T, dtype=self.dtype)

    def extra_repr(self) -> str:
        return f"T={self.T}"
