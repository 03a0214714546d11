r"""Competition between neurons: k-winners-take-all and lateral inhibition.

* :func:`k_winners` keeps, per sample and time step, at most ``k`` of the spiking neurons: those
  with the highest score (Masquelier & Thorpe 2007; Kheradpisheh et al. 2018).
* :class:`LateralInhibition` wraps any neuron model. Each spike inhibits every *other* neuron of
  the same sample at the next step by ``strength`` (the inhibitory population of Diehl & Cook
  2015, folded into one current):
  :math:`x_t^{(i)} \leftarrow x_t^{(i)} - g \sum_{j\neq i} s_{t-1}^{(j)}`,
  and, with ``k``, spikes beyond the ``k`` strongest are suppressed. Strength is ranked by the
  drive :math:`v_{t-1} + x_t`, the potential before the leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import NeuronModel


def k_winners(spikes: torch.Tensor, scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep at most ``k`` spikes per sample (row of ``[B, ...]``), those with the highest scores.

    Ties are broken by the lower index. Returns a tensor like ``spikes``.
    """
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    flat_s = spikes.reshape(spikes.shape[0], -1)
    if k >= flat_s.shape[1]:
        return spikes
    masked = torch.where(flat_s > 0, scores.reshape_as(flat_s), torch.full_like(flat_s, -torch.inf))
    top = masked.topk(k, dim=1).indices
    keep = torch.zeros_like(flat_s).scatter_(1, top, 1.0)
    return (flat_s * keep).reshape_as(spikes)


class InhibitedState(NamedTuple):
    inner: Any
    spikes: torch.Tensor


@dataclass(frozen=True)
class LateralInhibition:
    """A neuron model whose neurons inhibit each other; see the module docstring."""

    model: NeuronModel
    strength: float = 0.0
    k: int | None = None

    def initial_state(self, like: torch.Tensor) -> InhibitedState:
        return InhibitedState(self.model.initial_state(like), torch.zeros_like(like))

    def step(self, x: torch.Tensor, state: InhibitedState) -> tuple[torch.Tensor, InhibitedState]:
        if self.strength:
            prev = state.spikes.reshape(x.shape[0], -1)
            others = prev.sum(dim=1, keepdim=True) - prev
            x = x - self.strength * others.reshape_as(x)
        score = x + state.inner.v
        s, inner = self.model.step(x, state.inner)
        if self.k is not None:
            s = k_winners(s, score, self.k)
        return s, InhibitedState(inner, s)
