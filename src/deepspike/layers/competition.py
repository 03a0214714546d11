r"""Competition between neurons: k-winners-take-all and lateral inhibition.

* :func:`k_winners` keeps, per sample and time step, at most ``k`` of the spiking neurons: those
  with the highest score (Masquelier & Thorpe 2007; Kheradpisheh et al. 2018).
* :class:`LateralInhibition` wraps any neuron model. Each spike inhibits every *other* neuron of
  the same sample at the next step by ``strength`` (the inhibitory population of Diehl & Cook
  2015, folded into one current):
  :math:`x_t^{(i)} \leftarrow x_t^{(i)} - g \sum_{j\neq i} s_{t-1}^{(j)}`,
  and, with ``k``, spikes beyond the ``k`` strongest are suppressed. Strength is ranked by the
  drive :math:`v_{t-1} + x_t`, the potential before the leak. Around a conductance-based neuron
  (:class:`deepspike.neurons.coba.CobaLIFParams`, alone or under an adaptive threshold) the
  inhibition opens the others' inhibitory conductance by ``strength`` instead (Diehl & Cook's
  inhibitory synapses), which drives them toward :math:`E_i` and no further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons.base import NeuronModel, Run, step_loop
from deepspike.neurons.fused.config import RESET_CODES
from deepspike.neurons.fused.dispatch import select_backend


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
        inner = state.inner
        if self.strength:
            prev = state.spikes.reshape(x.shape[0], -1)
            others = (prev.sum(dim=1, keepdim=True) - prev).reshape_as(x)
            if inhibits_by_conductance(self.model):
                inner = self.model.inhibit(inner, self.strength * others)
            else:
                x = x - self.strength * others
        score = x + inner.v
        s, inner = self.model.step(x, inner)
        if self.k is not None:
            s = k_winners(s, score, self.k)
        return s, InhibitedState(inner, s)

    def multi_step(
        self, inputs: torch.Tensor, state: InhibitedState | None = None, record: bool = False
    ) -> Run:
        """All steps at once: the compiled scan of :mod:`deepspike.neurons.fused.cpu_inhibited`
        where it applies (LIF or adaptive-threshold LIF inside, no ``k``, no autograd graph, a
        CPU tensor, no trace), else :func:`~deepspike.neurons.base.step_loop`. Same spikes."""
        if state is None:
            state = self.initial_state(inputs[0])
        out = inhibited_scan(self, inputs, state) if not record else None
        return out if out is not None else step_loop(self, inputs, state, record)


def _unwrapped(model: Any) -> tuple[Any, bool]:
    """``(neuron, adaptive)``: the model an adaptive threshold wraps, or ``model`` itself."""
    from deepspike.learning.homeostasis import AdaptiveThreshold

    adaptive = isinstance(model, AdaptiveThreshold)
    return (model.model if adaptive else model), adaptive


def inhibits_by_conductance(model: Any) -> bool:
    """Whether ``model`` takes inhibition as a conductance (a conductance-based neuron, alone
    or under an adaptive threshold) rather than as a negative current."""
    from deepspike.neurons.coba import CobaLIFParams

    return isinstance(_unwrapped(model)[0], CobaLIFParams)


def _lif_parts(model: Any):
    """``(neuron, adaptive)`` for a scalar-leak LIF or a conductance-based LIF, or an adaptive
    threshold around either, else ``None``."""
    from deepspike.neurons.coba import CobaLIFParams
    from deepspike.neurons.lif import LIFParams

    neuron, adaptive = _unwrapped(model)
    if isinstance(neuron, CobaLIFParams):
        return neuron, adaptive
    if not isinstance(neuron, LIFParams) or isinstance(neuron.tau_mem, torch.Tensor):
        return None
    return neuron, adaptive


def inhibited_scan(
    model: LateralInhibition, inputs: torch.Tensor, state: InhibitedState
) -> Run | None:
    """Run ``model`` with the numba scan, or ``None`` where the scan does not apply (then the
    caller steps through time). The state fields are copied, never written in place."""
    parts = _lif_parts(model.model)
    if parts is None or model.k is not None:
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in (inputs, *state_tensors(state))):
        return None
    backend = select_backend(inputs)
    if backend is None or backend.name != "numba":
        return None
    from deepspike.neurons.coba import CobaLIFParams

    neuron, adaptive = parts
    t, b = inputs.shape[:2]
    shape = inputs.shape[1:]

    def work(x: torch.Tensor) -> torch.Tensor:  # a private [B, N] copy in the input's dtype
        return x.to(inputs.dtype).expand(shape).reshape(b, -1).clone()

    inner = state.inner.inner if adaptive else state.inner
    x = inputs.detach().reshape(t, b, -1).contiguous()
    shared = _ScanInputs(
        x=x,
        theta=work(state.inner.theta if adaptive else torch.zeros(())),
        prev=work(state.spikes),
        vth=work(torch.as_tensor(neuron.v_th)),
        strength=model.strength,
        adaptive=adaptive,
        decay=model.model.decay if adaptive else 1.0,
        theta_plus=model.model.theta_plus if adaptive else 0.0,
        spikes=torch.empty(t, b, x.shape[2], dtype=inputs.dtype),
    )
    scan = _coba_scan if isinstance(neuron, CobaLIFParams) else _lif_scan
    fields = scan(neuron, [work(f) for f in inner], shared)
    neuron_state = type(inner)(*(f.reshape(shape) for f in fields))
    theta = shared.theta.reshape(shape)
    inner_state = type(state.inner)(neuron_state, theta) if adaptive else neuron_state
    spikes, prev = shared.spikes.reshape(t, *shape), shared.prev.reshape(shape)
    return Run(spikes, InhibitedState(inner_state, prev), None)


class _ScanInputs(NamedTuple):
    """What both compiled scans take besides the neuron's own state: the input ``x``
    ``[T, B, N]``, private ``[B, N]`` copies of ``theta``, the previous step's spikes ``prev``
    and the base threshold ``vth`` (updated in place), the inhibition ``strength``, the
    adaptive threshold's constants (decay 1 and increment 0 without one), and the output
    ``spikes`` ``[T, B, N]``."""

    x: torch.Tensor
    theta: torch.Tensor
    prev: torch.Tensor
    vth: torch.Tensor
    strength: float
    adaptive: bool
    decay: float
    theta_plus: float
    spikes: torch.Tensor


def _lif_scan(lif: Any, fields: list[torch.Tensor], s: _ScanInputs) -> list[torch.Tensor]:
    """The current-based scan; updates the ``LIFState`` fields in place and returns them."""
    from deepspike.neurons.fused import cpu_inhibited

    v, refractory = fields
    constants = [lif.beta, lif.v_reset, s.strength, s.decay, s.theta_plus]
    params = torch.tensor([*constants, float(lif.refractory_steps), 0.0, 1.0], dtype=s.x.dtype)
    arrays = (s.x, v, refractory, s.theta, s.prev, s.vth, params)
    reset = RESET_CODES[lif.reset]
    cpu_inhibited.inhibited_scan(*(a.numpy() for a in arrays), reset, s.adaptive, s.spikes.numpy())
    return fields


def _coba_scan(coba: Any, fields: list[torch.Tensor], s: _ScanInputs) -> list[torch.Tensor]:
    """The conductance-based scan; updates the ``CobaLIFState`` fields in place, returns them."""
    from deepspike.neurons.coba import TAYLOR_COEFFICIENTS
    from deepspike.neurons.fused import cpu_inhibited

    v, refractory, g_exc, g_inh = fields
    c = coba.constants
    constants = [
        *(c.decay_exc, c.decay_inh, c.mean_exc, c.mean_inh, c.rate),
        *(coba.e_exc, coba.e_inh, coba.v_reset, s.strength, s.decay, s.theta_plus),
        *(float(coba.refire_steps), 0.0, 1.0, 0.25, *TAYLOR_COEFFICIENTS),
        float(coba.refire_steps - coba.refractory_steps),
    ]
    params = torch.tensor(constants, dtype=s.x.dtype)
    arrays = (s.x, v, refractory, g_exc, g_inh, s.theta, s.prev, s.vth, params, s.spikes)
    cpu_inhibited.coba_inhibited_scan(*(a.numpy() for a in arrays))
    return fields


def state_tensors(state: Any):
    """Every tensor in a nested tuple state."""
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, tuple):
        for field in state:
            yield from state_tensors(field)
