r"""Integrate-and-fire (IF) and leaky integrate-and-fire (LIF) neurons.

Discrete-time LIF (the deep-learning convention of Lee et al. 2016 and Neftci et al. 2019):

.. math::

    v_t = \beta\, v_{t-1} + x_t, \qquad \beta = e^{-\Delta t/\tau_m}, \qquad
    s_t = H(v_t - \vartheta)

followed by a reset: by subtraction :math:`v_t \leftarrow v_t - \vartheta s_t`, to a value
:math:`v_t \leftarrow (1 - s_t) v_t + s_t v_{reset}`, or none. It is the exact solution of
:math:`\tau_m \dot v = -v + R I(t)` for input held constant over each step, with
:math:`x_t = (1-\beta) R I_t`. Under a constant drive the inter-spike interval after a reset to 0
is therefore :math:`t_{ref} + \tau_m \ln\frac{RI}{RI - \vartheta}`, rounded up to whole steps.

An optional absolute refractory period of :math:`t_{ref}` holds the membrane at
:math:`v_{reset}` and ignores input for ``round(t_ref/dt)`` steps after each spike.
IF is the special case :math:`\beta = 1` with no refractory period.

``step`` is the reference. ``multi_step`` (what :func:`~deepspike.neurons.base.run` calls) runs
all steps in the fused scan of :mod:`deepspike.neurons.fused`, bit-identical to ``step`` in the
forward, and falls back to the per-step loop with a refractory period or where the scan does not
apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch

from deepspike.errors import ConfigError
from deepspike.neurons import fused
from deepspike.neurons.base import Run, decay, step_loop, steps_from_time
from deepspike.surrogate import DEFAULT_SURROGATE, Surrogate

if TYPE_CHECKING:
    from deepspike.neurons.alif import ALIFParams

ResetMode = Literal["subtract", "zero", "none"]
RESET_MODES: tuple[str, ...] = ("subtract", "zero", "none")


def check_reset(reset: str) -> None:
    if reset not in RESET_MODES:
        raise ConfigError(f"reset={reset!r} is unknown; choose one of {', '.join(RESET_MODES)}")


def apply_reset(
    v: torch.Tensor,
    spikes: torch.Tensor,
    threshold: float | torch.Tensor,
    v_reset: float,
    reset: str,
    detach: bool,
) -> torch.Tensor:
    r"""Reset the membrane after a spike: subtract :math:`\vartheta`, set to ``v_reset``, or keep.

    ``detach=True`` stops gradients through the reset term (Zenke & Vogels 2021 recommend it).
    """
    s = spikes.detach() if detach else spikes
    if reset == "subtract":
        return v - s * threshold
    if reset == "zero":
        return v - s * (v - v_reset)
    return v


def fused_scan(
    model: IFParams | LIFParams | ALIFParams,
    inputs: torch.Tensor,
    v: torch.Tensor,
    beta: float | torch.Tensor,
    record: bool,
    adaptation: fused.scan.Adaptation | None = None,
) -> fused.ScanResult | None:
    """:func:`deepspike.neurons.fused.threshold_scan` with ``model``'s threshold, reset and
    surrogate; ``None`` where the fused scan does not apply."""
    return fused.threshold_scan(
        inputs,
        v,
        beta=beta,
        v_th=model.v_th,
        v_reset=model.v_reset,
        reset=model.reset,
        detach_reset=model.detach_reset,
        surrogate=model.surrogate,
        record=record,
        adaptation=adaptation,
    )


class IFState(NamedTuple):
    v: torch.Tensor


@dataclass(frozen=True)
class IFParams:
    r"""Non-leaky integrate-and-fire: :math:`v_t = v_{t-1} + x_t`, spike at :math:`\vartheta`.

    With reset by subtraction it emits exactly :math:`\lfloor \sum_t x_t / \vartheta \rfloor`
    spikes for a non-negative input (the basis of rate-based ANN-to-SNN conversion).
    """

    v_th: float | torch.Tensor = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "subtract"
    surrogate: Surrogate = DEFAULT_SURROGATE
    detach_reset: bool = False
    v_init: float = 0.0

    def __post_init__(self) -> None:
        check_reset(self.reset)

    def initial_state(self, like: torch.Tensor) -> IFState:
        return IFState(torch.full_like(like, self.v_init))

    def step(self, x: torch.Tensor, state: IFState) -> tuple[torch.Tensor, IFState]:
        v = state.v + x
        s = self.surrogate(v - self.v_th)
        v = apply_reset(v, s, self.v_th, self.v_reset, self.reset, self.detach_reset)
        return s, IFState(v)

    def multi_step(
        self, inputs: torch.Tensor, state: IFState | None = None, record: bool = False
    ) -> Run:
        """All steps in the fused scan (:math:`\\beta = 1`); else :func:`step_loop`."""
        if state is None:
            state = self.initial_state(inputs[0])
        out = fused_scan(self, inputs, state.v, 1.0, record)
        if out is None:
            return step_loop(self, inputs, state, record)
        if record:
            return Run(out.spikes, IFState(out.v[-1]), IFState(out.v))
        return Run(out.spikes, IFState(out.v))


class LIFState(NamedTuple):
    v: torch.Tensor
    refractory: torch.Tensor  # steps of refractoriness left (0 when free)


@dataclass(frozen=True)
class LIFParams:
    """Leaky integrate-and-fire; see the module docstring for the equations.

    ``tau_mem`` may be a tensor (a learnable or per-neuron time constant) broadcastable to the
    input slice.
    """

    tau_mem: float | torch.Tensor = 10.0
    dt: float = 1.0
    v_th: float | torch.Tensor = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "subtract"
    t_ref: float = 0.0
    surrogate: Surrogate = DEFAULT_SURROGATE
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_reset(self.reset)
        if isinstance(self.tau_mem, float | int) and self.tau_mem <= 0:
            raise ConfigError(f"tau_mem={self.tau_mem} must be positive")
        if self.dt <= 0 or self.t_ref < 0:
            raise ConfigError(f"need dt > 0 and t_ref >= 0, got dt={self.dt}, t_ref={self.t_ref}")

    @property
    def beta(self) -> float | torch.Tensor:
        return decay(self.tau_mem, self.dt)

    @property
    def refractory_steps(self) -> int:
        return steps_from_time(self.t_ref, self.dt)

    def initial_state(self, like: torch.Tensor) -> LIFState:
        zeros = torch.zeros_like(like)
        return LIFState(zeros, zeros)

    def step(self, x: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        v = self.beta * state.v + x
        n_ref = self.refractory_steps
        if n_ref:
            v = torch.where(state.refractory > 0, torch.full_like(v, self.v_reset), v)
        s = self.surrogate(v - self.v_th)
        v = apply_reset(v, s, self.v_th, self.v_reset, self.reset, self.detach_reset)
        refractory = state.refractory
        if n_ref:
            spiked = s.detach() > 0
            refractory = torch.where(spiked, float(n_ref), (refractory - 1.0).clamp(min=0.0))
        return s, LIFState(v, refractory)

    def multi_step(
        self, inputs: torch.Tensor, state: LIFState | None = None, record: bool = False
    ) -> Run:
        """All steps in the fused scan; :func:`step_loop` with a refractory period (or where
        the scan does not apply). Without one the refractory counter is carried unchanged."""
        if state is None:
            state = self.initial_state(inputs[0])
        out = None
        if self.refractory_steps == 0:
            out = fused_scan(self, inputs, state.v, self.beta, record)
        if out is None:
            return step_loop(self, inputs, state, record)
        if record:
            trace = LIFState(out.v, state.refractory.expand(len(inputs), *state.refractory.shape))
            return Run(out.spikes, LIFState(out.v[-1], state.refractory), trace)
        return Run(out.spikes, LIFState(out.v, state.refractory))


class FloatConstants(NamedTuple):
    """The constants of an IF or LIF layer whose parameters are plain floats."""

    beta: float
    v_th: float
    v_reset: float
    v_init: float
    reset: ResetMode


def float_constants(model: object) -> FloatConstants | None:
    r"""``model``'s constants where its inference is the plain recurrence
    :math:`h = \beta v + x`, :math:`s = H(h - \vartheta)`, then the reset, from a uniform
    initial membrane: an :class:`IFParams` (:math:`\beta = 1`) or a :class:`LIFParams` without
    refractory period, with float (not per-neuron tensor) parameters. ``None`` otherwise
    (subclasses included: they may change the dynamics)."""
    if type(model) is IFParams:
        beta, v_init = 1.0, model.v_init
    elif type(model) is LIFParams and model.refractory_steps == 0:
        if isinstance(model.tau_mem, torch.Tensor):
            return None
        beta, v_init = model.beta, 0.0
    else:
        return None
    if isinstance(model.v_th, torch.Tensor):
        return None
    return FloatConstants(float(beta), float(model.v_th), float(model.v_reset), v_init, model.reset)
