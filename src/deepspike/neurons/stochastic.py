r"""Stochastic leaky integrate-and-fire neuron with escape noise.

The membrane follows the LIF recurrence :math:`v_t = \beta v_{t-1} + x_t`,
:math:`\beta = e^{-\Delta t/\tau_m}`, but the threshold is soft: the neuron fires with an
instantaneous rate (hazard) that grows exponentially with the distance to threshold, the escape
noise model of Gerstner & Kistler 2002 (ch. 5.3),

.. math::

    \rho(v) = \rho_0 \exp\!\Big(\frac{v - \vartheta}{\Delta_u}\Big), \qquad
    p_t = 1 - \exp\big(-\Delta t\, \rho(v_t)\big), \qquad s_t \sim \mathrm{Bernoulli}(p_t),

so :math:`p_t` is the probability of at least one escape during the step. :math:`\Delta_u`
(``delta_u``) sets the noise: as it goes to 0 the neuron becomes the deterministic LIF.
:math:`\rho_0` (``rho0``) is the rate at threshold, per ms when ``dt`` is in ms. The exponent is
clamped at 30 so that the rate stays finite (:math:`p` is then 1 to machine precision). After a
spike the membrane is reset as in :func:`~deepspike.neurons.lif.apply_reset`. Stochastic units
of this kind are the basis of synaptic sampling machines (Neftci et al. 2014, 2016).

Randomness. The draws use ``generator`` (a :class:`torch.Generator` on the device of the input)
or torch's global generator when it is ``None``. A model holding a generator is deterministic
given the generator's seed: reseed it (``generator.manual_seed(s)``) to reproduce a run.

Gradient. The sample has no derivative; the backward pass is straight-through with the exact
derivative of the firing probability, :math:`\partial s_t/\partial v_t := \partial p_t/\partial
v_t = \frac{\Delta t\,\rho(v_t)}{\Delta_u}\, e^{-\Delta t \rho(v_t)}`, i.e. the gradient of the
expected spike :math:`\mathbb E[s_t] = p_t`. No surrogate is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.neurons.base import check_positive, decay
from deepspike.neurons.lif import ResetMode, apply_reset, check_reset

MAX_EXPONENT = 30.0
"""Clamp of :math:`(v - \\vartheta)/\\Delta_u` before the exponential."""


class StochasticLIFState(NamedTuple):
    v: torch.Tensor  # membrane potential


@dataclass(frozen=True)
class StochasticLIFParams:
    """LIF with escape noise; see the module docstring for the equations."""

    tau_mem: float | torch.Tensor = 10.0
    dt: float = 1.0
    v_th: float | torch.Tensor = 1.0
    delta_u: float = 0.1
    rho0: float = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "subtract"
    detach_reset: bool = False
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        check_reset(self.reset)
        check_positive(tau_mem=self.tau_mem, dt=self.dt, delta_u=self.delta_u, rho0=self.rho0)

    @property
    def beta(self) -> float | torch.Tensor:
        """Per-step decay of the membrane, :math:`e^{-\\Delta t/\\tau_m}`."""
        return decay(self.tau_mem, self.dt)

    def firing_probability(self, v: torch.Tensor) -> torch.Tensor:
        """Probability :math:`p = 1 - e^{-\\Delta t \\rho(v)}` of a spike in one step at ``v``."""
        z = ((v - self.v_th) / self.delta_u).clamp(max=MAX_EXPONENT)
        return -torch.expm1(-self.dt * self.rho0 * torch.exp(z))

    def initial_state(self, like: torch.Tensor) -> StochasticLIFState:
        return StochasticLIFState(torch.zeros_like(like))

    def step(
        self, x: torch.Tensor, state: StochasticLIFState
    ) -> tuple[torch.Tensor, StochasticLIFState]:
        v = self.beta * state.v + x
        p = self.firing_probability(v)
        sample = torch.bernoulli(p.detach(), generator=self.generator)
        s = sample + (p - p.detach())  # forward: the sample; backward: dp/dv
        v = apply_reset(v, s, self.v_th, self.v_reset, self.reset, self.detach_reset)
        return s, StochasticLIFState(v)
