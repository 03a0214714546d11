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


def detach_state(state: Any) -> Any:
    """The same ``NamedTuple`` state with every field cut from the autograd graph."""
    return type(state)(*(field.detach() for field in state))


def _run_window(model: NeuronModel, inputs: torch.Tensor, state: Any, record: bool) -> Run:
    fused = getattr(model, "multi_step", None)
    if fused is not None:
        return fused(inputs, state, record)
    return step_loop(model, inputs, state, record)


def run(
    model: NeuronModel,
    inputs: torch.Tensor,
    state: Any = None,
    record: bool = False,
    bptt_window: int | None = None,
) -> Run:
    """Run ``model`` over a time-major input ``[T, B, ...]``.

    Uses the model's own ``multi_step`` (a fused kernel) when it has one, else :func:`step_loop`.
    ``record=True`` also returns every intermediate state, e.g. the membrane trace ``trace.v``.

    ``bptt_window=k`` is truncated backpropagation through time (Williams & Peng 1990): the
    sequence runs in windows of ``k`` steps and the state is detached between windows, so a loss
    at step ``t`` reaches only the inputs (and initial state) of ``t``'s own window. The forward
    values are unchanged; the memory of the backward stays that of the whole sequence (every
    window's graph is kept until ``backward``), but each window's gradients are independent.
    """
    if inputs.dim() < 2:
        raise ShapeError(
            f"neuron input has shape {list(inputs.shape)} but must be time-major [T, B, ...]; "
            "add the missing axes with x.reshape(T, B, -1)"
        )
    if bptt_window is not None and (
        isinstance(bptt_window, bool) or not isinstance(bptt_window, int) or bptt_window < 1
    ):
        raise ConfigError(
            f"bptt_window={bptt_window!r} must be a positive whole number of steps "
            "(or None for full backpropagation through time)"
        )
    if bptt_window is None or bptt_window >= inputs.shape[0]:
        return _run_window(model, inputs, state, record)
    windows: list[Run] = []
    for start in range(0, inputs.shape[0], bptt_window):
        if windows:
            state = detach_state(windows[-1].state)
        windows.append(_run_window(model, inputs[start : start + bptt_window], state, record))
    spikes = torch.cat([w.spikes for w in windows])
    trace = None
    if record:
        traces = [w.trace for w in windows]
        trace = type(traces[0])(*(torch.cat(fields) for fields in zip(*traces, strict=True)))
    return Run(spikes, windows[-1].state, trace)


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
