r"""Leaky integrate-and-fire neurons with conductance-based synapses (COBA).

The membrane of Diehl & Cook (2015, eqs. 1-3), measured from rest:

.. math::

    \tau_m \dot v = -v + g_e (E_e - v) + g_i (E_i - v), \qquad
    \dot g_e = -g_e/\tau_e, \quad \dot g_i = -g_i/\tau_i,

with conductances in units of the leak conductance. An input of :math:`x` at a step opens the
excitatory conductance by :math:`x` (:math:`g_e \mathrel{+}= x`, Diehl & Cook's ``ge += w``);
inhibition opens :math:`g_i` (:meth:`CobaLIFParams.inhibit`, which
:class:`deepspike.layers.LateralInhibition` calls). Unlike a current, a conductance drives the
membrane toward its reversal potential and no further: inhibition cannot push :math:`v` below
:math:`E_i`, and excitation weakens as :math:`v` approaches :math:`E_e`.

Discretisation (step :math:`\Delta t`): the increments arrive at the start of a step; each
conductance then decays exponentially inside it, so its mean over the step is
:math:`\bar g = g\,\frac{\tau}{\Delta t}(1 - e^{-\Delta t/\tau})` and an increment :math:`x`
delivers exactly :math:`x\tau` of conductance-time in all. With the mean conductances held over
the step the membrane equation is linear and is integrated exactly:

.. math::

    G = 1 + \bar g_e + \bar g_i, \quad
    v_\infty = \frac{\bar g_e E_e + \bar g_i E_i}{G}, \quad
    v \leftarrow v_\infty + (v - v_\infty)\, e^{-G\Delta t/\tau_m},

which stays between the reversal potentials for any conductance (forward Euler does not once
:math:`G\Delta t/\tau_m > 2`). The factor :math:`e^{-y}`, :math:`y = G\Delta t/\tau_m`, is
evaluated as :math:`1/p(y/4)^4` with :math:`p` the degree-6 Taylor polynomial of
:math:`e^{z}` (:func:`decay_factor`): relative error below :math:`10^{-5}` for :math:`y \le 2`
and below float32 rounding for :math:`y \le 0.1` (the usual range: :math:`\Delta t/\tau_m`
= 0.01), positive and decreasing to 0 for any :math:`y`. Unlike a call to ``exp`` (numba has
no vector ``exp`` here), it is arithmetic the compiler vectorises across neurons. Then
:math:`s = H(v - \vartheta)`, the reset to :math:`v_{reset}`, and an absolute refractory period
that holds :math:`v` at :math:`v_{reset}` (the conductances keep decaying). ``t_refire``, when
longer than ``t_ref``, is the shortest interval between two spikes: after ``t_ref`` the membrane
integrates again, but the neuron cannot fire until ``t_refire`` after its last spike. Diehl &
Cook's simulation has this form: Brian holds the membrane for 5 ms, and the threshold condition
``timer > 5 ms`` reads a timer that advances 0.1 ms per ms (``dtimer/dt = 100 ms/s``), so a
neuron fires at most once in 50 ms. The defaults are
Diehl & Cook's excitatory neuron: rest -65 mV, :math:`E_e` = 0 mV, :math:`E_i` = -100 mV,
threshold -52 mV, reset -65 mV, :math:`\tau_m` = 100 ms, :math:`\tau_e` = 1 ms,
:math:`\tau_i` = 2 ms, 5 ms refractory.

``step`` is the reference; the compiled scan of :mod:`deepspike.neurons.fused.cpu_inhibited`
runs the same arithmetic for whole presentations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import steps_from_time

#: the coefficients 1/k! (k = 1..6) of the degree-6 Taylor polynomial of e^z
TAYLOR_COEFFICIENTS = (1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720)


def decay_factor(y: torch.Tensor) -> torch.Tensor:
    r""":math:`e^{-y} \approx 1/p(y/4)^4`, :math:`p(z) = \sum_{k=0}^{6} z^k/k!`, for
    :math:`y \ge 0` (see the module docstring); the compiled scan does the same operations."""
    z = y * 0.25
    c1, c2, c3, c4, c5, c6 = TAYLOR_COEFFICIENTS
    p = 1.0 + z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6)))))
    p = p * p
    return 1.0 / (p * p)


class CobaLIFState(NamedTuple):
    v: torch.Tensor
    refractory: torch.Tensor  # steps of refractoriness left (0 when free)
    g_exc: torch.Tensor
    g_inh: torch.Tensor


@dataclass(frozen=True)
class CobaLIFParams:
    """Conductance-based LIF; see the module docstring. Voltages are measured from rest."""

    tau_mem: float = 100.0
    dt: float = 1.0
    v_th: float | torch.Tensor = 13.0
    v_reset: float = 0.0
    t_ref: float = 5.0
    t_refire: float = 0.0
    e_exc: float = 65.0
    e_inh: float = -35.0
    tau_exc: float = 1.0
    tau_inh: float = 2.0

    def __post_init__(self) -> None:
        for name in ("tau_mem", "dt", "tau_exc", "tau_inh"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be positive")
        if self.t_ref < 0 or self.t_refire < 0:
            raise ConfigError(f"t_ref={self.t_ref} and t_refire={self.t_refire} must be >= 0")
        if not self.e_inh <= 0 <= self.e_exc:
            raise ConfigError(
                f"need e_inh <= 0 <= e_exc (reversal potentials measured from rest), got "
                f"e_inh={self.e_inh}, e_exc={self.e_exc}"
            )

    @property
    def refractory_steps(self) -> int:
        return steps_from_time(self.t_ref, self.dt)

    @property
    def refire_steps(self) -> int:
        """Steps after a spike before the next may come (at least the refractory steps)."""
        return max(self.refractory_steps, steps_from_time(self.t_refire, self.dt))

    @property
    def constants(self) -> CobaConstants:
        """The per-step constants both the reference and the compiled scan use."""
        d_exc, d_inh = math.exp(-self.dt / self.tau_exc), math.exp(-self.dt / self.tau_inh)
        return CobaConstants(
            decay_exc=d_exc,
            decay_inh=d_inh,
            mean_exc=(1.0 - d_exc) * self.tau_exc / self.dt,
            mean_inh=(1.0 - d_inh) * self.tau_inh / self.dt,
            rate=self.dt / self.tau_mem,
        )

    def initial_state(self, like: torch.Tensor) -> CobaLIFState:
        zeros = torch.zeros_like(like)
        return CobaLIFState(zeros, zeros, zeros, zeros)

    def inhibit(self, state: CobaLIFState, amount: torch.Tensor) -> CobaLIFState:
        """Open the inhibitory conductance by ``amount`` before the next step."""
        return state._replace(g_inh=state.g_inh + amount)

    def step(self, x: torch.Tensor, state: CobaLIFState) -> tuple[torch.Tensor, CobaLIFState]:
        c = self.constants
        g_exc, g_inh = state.g_exc + x, state.g_inh
        mean_exc, mean_inh = g_exc * c.mean_exc, g_inh * c.mean_inh
        total = 1.0 + mean_exc + mean_inh
        v_inf = (mean_exc * self.e_exc + mean_inh * self.e_inh) / total
        v = v_inf + (state.v - v_inf) * decay_factor(total * c.rate)
        # state.refractory counts the steps left until the neuron may fire again; the membrane
        # is held for the first refractory_steps of them
        n_ref, n_refire = self.refractory_steps, self.refire_steps
        if n_refire:
            held = state.refractory > n_refire - n_ref
            v = torch.where(held, torch.full_like(v, self.v_reset), v)
        s = ((v >= self.v_th) & (state.refractory <= 0)).to(v.dtype)
        v = torch.where(s > 0, torch.full_like(v, self.v_reset), v)
        refractory = state.refractory
        if n_refire:
            refractory = torch.where(s > 0, float(n_refire), (refractory - 1.0).clamp(min=0.0))
        return s, CobaLIFState(v, refractory, g_exc * c.decay_exc, g_inh * c.decay_inh)


class CobaConstants(NamedTuple):
    decay_exc: float  # e^{-dt/tau_e}
    decay_inh: float
    mean_exc: float  # mean of a decaying conductance over a step, per unit at its start
    mean_inh: float
    rate: float  # dt / tau_m
