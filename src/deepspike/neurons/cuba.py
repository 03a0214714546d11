r"""Current-based leaky integrate-and-fire neuron (second order, "CUBA" LIF).

The input is first low-pass filtered by an exponential synaptic current, then integrated by a
leaky membrane (the model of Zenke & Ganguli 2018's SuperSpike and of Neftci, Mostafa & Zenke
2019, Fig. 1):

.. math::

    i_t = \alpha\, i_{t-1} + x_t, \qquad v_t = \beta\, v_{t-1} + i_t, \qquad
    s_t = H(v_t - \vartheta),

with :math:`\alpha = e^{-\Delta t/\tau_{syn}}` and :math:`\beta = e^{-\Delta t/\tau_m}`, followed
by the reset of :func:`~deepspike.neurons.lif.apply_reset` (subtract :math:`\vartheta`, set to
:math:`v_{reset}`, or none). The synaptic current is not reset. A single input pulse therefore
produces a difference-of-exponentials post-synaptic potential instead of LIF's instantaneous jump;
under a constant drive ``x`` the current settles at :math:`x/(1-\alpha)` and the (sub-threshold)
membrane at :math:`x/((1-\alpha)(1-\beta))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import check_positive, decay
from deepspike.neurons.lif import ResetMode, apply_reset, check_reset
from deepspike.surrogate import DEFAULT_SURROGATE, Surrogate


class CubaLIFState(NamedTuple):
    v: torch.Tensor  # membrane potential
    i: torch.Tensor  # synaptic current


@dataclass(frozen=True)
class CubaLIFParams:
    """Current-based LIF; see the module docstring for the equations.

    ``tau_syn`` and ``tau_mem`` may be tensors (learnable or per-neuron time constants)
    broadcastable to the input slice.
    """

    tau_syn: float | torch.Tensor = 5.0
    tau_mem: float | torch.Tensor = 10.0
    dt: float = 1.0
    v_th: float | torch.Tensor = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "subtract"
    surrogate: Surrogate = DEFAULT_SURROGATE
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_reset(self.reset)
        check_positive(tau_syn=self.tau_syn, tau_mem=self.tau_mem)
        if not self.dt > 0:
            raise ConfigError(f"dt={self.dt} must be positive")

    @property
    def alpha(self) -> float | torch.Tensor:
        """Per-step decay of the synaptic current, :math:`e^{-\\Delta t/\\tau_{syn}}`."""
        return decay(self.tau_syn, self.dt)

    @property
    def beta(self) -> float | torch.Tensor:
        """Per-step decay of the membrane, :math:`e^{-\\Delta t/\\tau_m}`."""
        return decay(self.tau_mem, self.dt)

    def initial_state(self, like: torch.Tensor) -> CubaLIFState:
        zeros = torch.zeros_like(like)
        return CubaLIFState(zeros, zeros)

    def step(self, x: torch.Tensor, state: CubaLIFState) -> tuple[torch.Tensor, CubaLIFState]:
        i = self.alpha * state.i + x
        v = self.beta * state.v + i
        s = self.surrogate(v - self.v_th)
        v = apply_reset(v, s, self.v_th, self.v_reset, self.reset, self.detach_reset)
        return s, CubaLIFState(v, i)
