r"""Izhikevich (2003) simple model: rich cortical firing patterns from two variables.

E. M. Izhikevich, "Simple model of spiking neurons", IEEE Trans. Neural Networks 14(6), 2003:

.. math::

    \dot v = 0.04 v^2 + 5 v + 140 - u + I, \qquad \dot u = a (b v - u),

    \text{if } v \ge v_{peak} = 30\,\text{mV}: \quad v \leftarrow c, \quad u \leftarrow u + d,

with :math:`v` in mV and time in ms. The four parameters select the firing pattern; the presets of
the paper's Fig. 2 are in :data:`IZHIKEVICH_PRESETS` (:meth:`IzhikevichParams.preset`).

Integration. Each step of ``dt`` ms is split into ``substeps`` forward-Euler sub-steps of
:math:`h = \Delta t/n` for both variables. The quadratic term makes :math:`v` diverge in finite
time once it passes the saddle, so plain Euler at 1 ms overshoots; the paper's own code uses two
0.5 ms half-steps for :math:`v`. The default here (``dt = 0.5``, two sub-steps, so
:math:`h = 0.25` ms) matches a fine-resolution reference integration within about 2 % in rate for
the regular-spiking neuron. During the sub-steps :math:`v` is clipped at :math:`v_{peak}` (the
clip is straight-through for the gradient), which keeps the upswing finite; the spike is emitted
and the reset applied at the end of the step, so a spike time is late by at most one step.
Fast-spiking, thalamo-cortical and resonator settings have shorter time scales and need a smaller
``dt`` for the same accuracy.

Input. :math:`I_t = ` ``input_scale`` :math:`\cdot x_t`, held constant over the step.

Gradient. The spike is :math:`H((v - v_{peak})/v_{scale})` with the surrogate's derivative in the
backward pass; ``surrogate_scale`` :math:`= v_{scale}` (10 mV by default) converts millivolts into
the unit-width scale that the surrogates assume.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import check_positive
from deepspike.neurons.lif import apply_reset
from deepspike.surrogate import DEFAULT_SURROGATE, Surrogate

IZHIKEVICH_PRESETS: dict[str, tuple[float, float, float, float]] = {
    "RS": (0.02, 0.2, -65.0, 8.0),  # regular spiking
    "IB": (0.02, 0.2, -55.0, 4.0),  # intrinsically bursting
    "CH": (0.02, 0.2, -50.0, 2.0),  # chattering
    "FS": (0.1, 0.2, -65.0, 2.0),  # fast spiking
    "LTS": (0.02, 0.25, -65.0, 2.0),  # low-threshold spiking
    "TC": (0.02, 0.25, -65.0, 0.05),  # thalamo-cortical
    "RZ": (0.1, 0.26, -65.0, 2.0),  # resonator
}
"""The ``(a, b, c, d)`` of Izhikevich 2003, Fig. 2, by the paper's abbreviation."""


class IzhikevichState(NamedTuple):
    v: torch.Tensor  # membrane potential (mV)
    u: torch.Tensor  # membrane recovery variable


@dataclass(frozen=True)
class IzhikevichParams:
    """Izhikevich neuron; see the module docstring for the equations and the integration.

    ``a``, ``b``, ``c``, ``d`` may be tensors broadcastable to the input slice (a heterogeneous
    population, as in the paper's network). Defaults: regular spiking.
    """

    a: float | torch.Tensor = 0.02
    b: float | torch.Tensor = 0.2
    c: float | torch.Tensor = -65.0
    d: float | torch.Tensor = 8.0
    dt: float = 0.5
    substeps: int = 2
    v_peak: float = 30.0
    input_scale: float = 1.0
    v_init: float = -65.0
    surrogate: Surrogate = DEFAULT_SURROGATE
    surrogate_scale: float = 10.0
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_positive(dt=self.dt, surrogate_scale=self.surrogate_scale)
        if not isinstance(self.substeps, int) or self.substeps < 1:
            raise ConfigError(f"substeps={self.substeps} must be an integer >= 1")

    @classmethod
    def preset(cls, name: str, **kw: Any) -> IzhikevichParams:
        """Parameters of a named firing pattern, e.g. ``IzhikevichParams.preset("FS", dt=0.25)``."""
        key = name.upper()
        if key not in IZHIKEVICH_PRESETS:
            raise ConfigError(
                f"Izhikevich preset {name!r} is unknown; choose one of "
                f"{', '.join(IZHIKEVICH_PRESETS)}"
            )
        clash = {"a", "b", "c", "d"} & kw.keys()
        if clash:
            raise ConfigError(f"preset {name!r} sets {sorted(clash)}; pass them without a preset")
        names = {f.name for f in fields(cls)}
        unknown = kw.keys() - names
        if unknown:
            raise ConfigError(f"unknown Izhikevich option(s) {sorted(unknown)}")
        a, b, c, d = IZHIKEVICH_PRESETS[key]
        return cls(a=a, b=b, c=c, d=d, **kw)

    def initial_state(self, like: torch.Tensor) -> IzhikevichState:
        v = torch.full_like(like, self.v_init)
        return IzhikevichState(v, self.b * v)

    def step(self, x: torch.Tensor, state: IzhikevichState) -> tuple[torch.Tensor, IzhikevichState]:
        current = self.input_scale * x
        h = self.dt / self.substeps
        v, u = state.v, state.u
        for _ in range(self.substeps):
            dv = 0.04 * v * v + 5.0 * v + 140.0 - u + current
            du = self.a * (self.b * v - u)
            v = v + h * dv
            u = u + h * du
            v = v - (v - self.v_peak).clamp(min=0.0).detach()  # clip at v_peak, straight-through
        s = self.surrogate((v - self.v_peak) / self.surrogate_scale)
        v = apply_reset(v, s, self.v_peak, self.c, "zero", self.detach_reset)
        s_r = s.detach() if self.detach_reset else s
        return s, IzhikevichState(v, u + self.d * s_r)
