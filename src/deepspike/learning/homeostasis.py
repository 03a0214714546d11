r"""Homeostasis: adaptive thresholds and synaptic normalisation (Diehl & Cook 2015).

* **Adaptive threshold.** Each spike raises a neuron's threshold by :math:`\theta_+`, and
  :math:`\theta` relaxes back with a slow time constant :math:`\tau_\theta`:

  .. math::

      \theta_t = \theta_{t-1}\, e^{-\Delta t/\tau_\theta} + \theta_+ s_t,
      \qquad \vartheta_{\mathrm{eff}} = \vartheta + \theta .

  A neuron that wins often becomes harder to excite, so the others get their share of inputs
  (Diehl & Cook: :math:`\theta_+ = 0.05` mV, :math:`\tau_\theta = 10^7` ms).
  :class:`AdaptiveThreshold` wraps any neuron model whose threshold field is ``v_th`` and is
  itself a neuron model, so it runs through :func:`deepspike.neurons.run` and composes with
  :class:`deepspike.layers.LateralInhibition`.
* **Synaptic normalisation.** :func:`normalize_incoming` rescales each neuron's incoming weights
  to a fixed sum (78 for Diehl & Cook's 784 inputs), which keeps the total drive constant while
  STDP redistributes it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import NeuronModel


def threshold_step(
    theta: torch.Tensor, spikes: torch.Tensor, theta_plus: float, decay: float
) -> torch.Tensor:
    r""":math:`\theta \leftarrow \theta\,d + \theta_+ s` (one step of the adaptive threshold)."""
    return theta * decay + theta_plus * spikes


def threshold_after(
    theta: torch.Tensor, spike_counts: torch.Tensor, theta_plus: float, decay_total: float
) -> torch.Tensor:
    r"""The threshold after a period with ``spike_counts`` spikes in which :math:`\theta` decays
    by ``decay_total`` in all; exact when the period is short against :math:`\tau_\theta`
    (the spikes' own decay inside the period is neglected)."""
    return theta * decay_total + theta_plus * spike_counts


class AdaptiveState(NamedTuple):
    inner: Any
    theta: torch.Tensor

    @property
    def v(self) -> torch.Tensor:
        """The wrapped model's membrane potential (what inhibition and k-WTA read)."""
        return self.inner.v


@dataclass(frozen=True)
class AdaptiveThreshold:
    """A neuron model with an adaptive threshold around ``model``; see the module docstring.

    ``theta_init`` is the starting :math:`\\theta` (a float or a tensor broadcastable to the
    neurons, e.g. a learned per-neuron threshold carried from image to image).
    """

    model: NeuronModel
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    dt: float = 1.0
    theta_init: float | torch.Tensor = 0.0

    def __post_init__(self) -> None:
        if not hasattr(self.model, "v_th"):
            raise ConfigError(
                "AdaptiveThreshold needs a model with a v_th field, "
                f"got {type(self.model).__name__}"
            )
        if self.tau_theta <= 0 or self.dt <= 0:
            raise ConfigError(f"need tau_theta > 0 and dt > 0, got {self.tau_theta}, {self.dt}")

    @property
    def decay(self) -> float:
        return math.exp(-self.dt / self.tau_theta)

    def initial_state(self, like: torch.Tensor) -> AdaptiveState:
        theta = torch.zeros_like(like) + self.theta_init
        return AdaptiveState(self.model.initial_state(like), theta)

    def inhibit(self, state: AdaptiveState, amount: torch.Tensor) -> AdaptiveState:
        """Pass conductance inhibition to the wrapped model (see
        :class:`deepspike.layers.LateralInhibition`)."""
        return state._replace(inner=self.model.inhibit(state.inner, amount))

    def step(self, x: torch.Tensor, state: AdaptiveState) -> tuple[torch.Tensor, AdaptiveState]:
        model = dataclasses.replace(self.model, v_th=self.model.v_th + state.theta)
        s, inner = model.step(x, state.inner)
        theta = threshold_step(state.theta, s.detach(), self.theta_plus, self.decay)
        return s, AdaptiveState(inner, theta)


def normalize_incoming(w: torch.Tensor, total: float, eps: float = 1e-12) -> torch.Tensor:
    r"""Scale each postsynaptic neuron's incoming weights so they sum to ``total``.

    ``w`` is ``[n_out, ...]`` (a dense ``[n_out, n_in]`` matrix or a conv kernel
    ``[C', C, kh, kw]``): every slice ``w[k]`` is multiplied by ``total / sum(w[k])``.
    """
    if not total > 0:
        raise ConfigError(f"the weight sum total={total} must be positive")
    sums = w.flatten(1).sum(1).clamp(min=eps)  # flatten: no -1 to infer when w has no rows
    return w * (total / sums).reshape(-1, *([1] * (w.dim() - 1)))
