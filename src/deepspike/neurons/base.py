"""The functional neuron interface shared by every model.

A neuron model is a frozen dataclass of *parameters* with two pure methods:

* ``initial_state(like) -> State``: the resting state for an input slice ``like`` ``[B, ...]``;
* ``step(x_t, state) -> (spikes_t, new_state)``: one time step, with ``State`` a ``NamedTuple``
  of tensors.

Nothing is stored on the parameters object, so the same model can run many sequences at once,
inside ``torch.compile`` or DataParallel, with no reset to remember. :func:`run` applies a model to
a time-major sequence ``[T, B, ...]``. Models may override ``multi_step`` with a fused kernel; the
generic per-step loop here is the reference such kernels are tested against.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

from deepspike.errors import ConfigError, ShapeError


@runtime_checkable
class NeuronModel(Protocol):
    """What every neuron parameter set provides."""

    def initial_state(self, like: torch.Tensor) -> Any: ...

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


class Run(NamedTuple):
    """Result of :func:`run`: spikes ``[T, B, ...]``, the final state and, if recorded, the
    per-step states stacked over time (each field ``[T, B, ...]``)."""

    spikes: torch.Tensor
    state: Any
    trace: Any | None = None


def stack_states(states: list[Any]) -> Any:
    """Stack a list of ``NamedTuple`` states into one state whose fields gain a leading T axis."""
    first = states[0]
    return type(first)(*(torch.stack(fields) for fields in zip(*states, strict=True)))


def step_loop(
    model: NeuronModel, inputs: torch.Tensor, state: Any = None, record: bool = False
) -> Run:
    """The reference multi-step path: ``model.step`` applied to each ``inputs[t]`` in turn."""
    if state is None:
        state = model.initial_state(inputs[0])
    spikes, states = [], []
    for x_t in inputs:
        s_t, state = model.step(x_t, state)
        spikes.append(s_t)
        if record:
            states.append(state)
    return Run(torch.stack(spikes), state, stack_states(states) if record else None)


def run(model: NeuronModel, inputs: torch.Tensor, state: Any = None, record: bool = False) -> Run:
    """Run ``model`` over a time-major input ``[T, B, ...]``.

    Uses the model's own ``multi_step`` (a fused kernel) when it has one, else :func:`step_loop`.
    ``record=True`` also returns every intermediate state, e.g. the membrane trace ``trace.v``.
    """
    if inputs.dim() < 2:
        raise ShapeError(
            f"neuron input has shape {list(inputs.shape)} but must be time-major [T, B, ...]; "
            "add the missing axes with x.reshape(T, B, -1)"
        )
    fused = getattr(model, "multi_step", None)
    if fused is not None:
        return fused(inputs, state, record)
    return step_loop(model, inputs, state, record)


def steps_from_time(t: float, dt: float) -> int:
    """Number of whole time steps that cover duration ``t`` at resolution ``dt``."""
    return round(t / dt)


def decay(tau: float | torch.Tensor, dt: float) -> float | torch.Tensor:
    r"""Per-step decay factor :math:`e^{-\Delta t/\tau}` of a first-order low-pass filter."""
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)


def check_positive(**values: float | torch.Tensor) -> None:
    """Raise :class:`ConfigError` for any plain-number value that is not strictly positive.

    Tensors are not checked: they may be learnable (and are clamped by their owner).
    """
    for name, value in values.items():
        if not isinstance(value, torch.Tensor) and not value > 0:
            raise ConfigError(f"{name}={value} must be positive")
