r"""Adaptive-threshold leaky integrate-and-fire neuron (ALIF), the unit of LSNNs.

Long short-term memory spiking networks (Bellec, Salaj, Subramoney, Legenstein & Maass 2018,
"Long short-term memory and learning-to-learn in networks of spiking neurons") add to the LIF
membrane a slowly decaying adaptation variable :math:`a` that raises the threshold after each
spike:

.. math::

    v_t &= \beta\, v_{t-1} + x_t, \qquad \beta = e^{-\Delta t/\tau_m} \\
    \vartheta_t &= v_{th} + \beta_a\, a_{t-1} \\
    s_t &= H(v_t - \vartheta_t) \\
    a_t &= \rho\, a_{t-1} + (1 - \rho)\, s_t, \qquad \rho = e^{-\Delta t/\tau_a}

followed by a reset of the membrane: subtract the current threshold :math:`\vartheta_t`, set to
:math:`v_{reset}`, or none. Under a constant drive the threshold climbs with every spike, so the
inter-spike intervals lengthen (spike-frequency adaptation); with :math:`\tau_a` of hundreds of
milliseconds the threshold carries information over long delays. :math:`\beta_a = 0` recovers
LIF; a negative :math:`\beta_a` lowers the threshold after spikes (facilitation).

``step`` is the reference; ``multi_step`` runs all steps in the fused scan of
:mod:`deepspike.neurons.fused` (bit-identical forward) where it applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import Run, check_positive, decay, step_loop
from deepspike.neurons.lif import ResetMode, apply_reset, check_reset, fused_scan
from deepspike.surrogate import DEFAULT_SURROGATE, Surrogate


class ALIFState(NamedTuple):
    v: torch.Tensor  # membrane potential
    a: torch.Tensor  # threshold adaptation (a low-pass filtered spike train)


@dataclass(frozen=True)
class ALIFParams:
    """Adaptive LIF (LSNN); see the module docstring for the equations.

    The defaults follow Bellec et al. 2018 (:math:`\\tau_m = 20` ms, :math:`\\tau_a = 200` ms,
    :math:`\\beta_a = 1.8`) with the threshold scaled to 1. ``tau_mem`` may be a tensor.
    """

    tau_mem: float | torch.Tensor = 20.0
    tau_adapt: float | torch.Tensor = 200.0
    beta_adapt: float | torch.Tensor = 1.8
    dt: float = 1.0
    v_th: float | torch.Tensor = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "subtract"
    surrogate: Surrogate = DEFAULT_SURROGATE
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_reset(self.reset)
        check_positive(tau_mem=self.tau_mem, tau_adapt=self.tau_adapt)
        if not self.dt > 0:
            raise ConfigError(f"dt={self.dt} must be positive")

    @property
    def beta(self) -> float | torch.Tensor:
        """Per-step decay of the membrane, :math:`e^{-\\Delta t/\\tau_m}`."""
        return decay(self.tau_mem, self.dt)

    @property
    def rho(self) -> float | torch.Tensor:
        """Per-step decay of the adaptation, :math:`e^{-\\Delta t/\\tau_a}`."""
        return decay(self.tau_adapt, self.dt)

    def threshold(self, a: torch.Tensor) -> torch.Tensor:
        """The effective threshold :math:`v_{th} + \\beta_a a` for adaptation ``a``."""
        return self.v_th + self.beta_adapt * a

    def initial_state(self, like: torch.Tensor) -> ALIFState:
        zeros = torch.zeros_like(like)
        return ALIFState(zeros, zeros)

    def step(self, x: torch.Tensor, state: ALIFState) -> tuple[torch.Tensor, ALIFState]:
        v = self.beta * state.v + x
        theta = self.threshold(state.a)
        s = self.surrogate(v - theta)
        v = apply_reset(v, s, theta, self.v_reset, self.reset, self.detach_reset)
        rho = self.rho
        a = rho * state.a + (1.0 - rho) * s
        return s, ALIFState(v, a)

    def multi_step(
        self, inputs: torch.Tensor, state: ALIFState | None = None, record: bool = False
    ) -> Run:
        """All steps in the fused scan; else :func:`step_loop`."""
        if state is None:
            state = self.initial_state(inputs[0])
        rho = self.rho
        adaptation = (state.a, self.beta_adapt, rho, 1.0 - rho)
        out = fused_scan(self, inputs, state.v, self.beta, record, adaptation)
        if out is None:
            return step_loop(self, inputs, state, record)
        if record:
            return Run(out.spikes, ALIFState(out.v[-1], out.a[-1]), ALIFState(out.v, out.a))
        return Run(out.spikes, ALIFState(out.v, out.a))
