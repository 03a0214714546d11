"""Synaptic layers on time-major tensors ``[T, B, ...]``.

Feed-forward layers have no state over time, so each folds time into the batch axis and does the
work of all ``T`` steps in one call: one GEMM over ``[T*B, in]`` for :class:`Linear`, one
convolution over ``[T*B, C, H, W]`` for :class:`Conv2d`. The metrics harness
(:mod:`deepspike.metrics`) recognises these classes to count synaptic operations.

In inference on the CPU, :class:`Linear` is event-driven on sparse binary spikes: the output is
the sum of the weight columns of the inputs that spiked, so its cost scales with the number of
events (the accumulate-only synaptic operations of neuromorphic hardware) instead of with
``in x out``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from deepspike.errors import ConfigError, ShapeError

EVENT_THRESHOLD = 0.1
"""Default input activity (fraction of non-zero inputs) below which :class:`Linear` switches to
the event-driven path; the crossover measured on 2 CPU threads (``docs/kernels.md``)."""


EVENT_MIN_SYNAPSES = 1 << 16
"""Layers with fewer synapses (``in x out``) stay dense: their GEMM costs less than the event
path's fixed cost (at batch 1 and 25 steps, an 800 -> 10 layer took 19 us dense against 30 us
event-driven on 2 CPU threads; ``docs/kernels.md``)."""

EVENT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def fold_time(x: torch.Tensor, feature_dims: int, layer: str) -> tuple[torch.Tensor, int, int]:
    """Reshape ``[T, B, *features]`` to ``[T*B, *features]``; return it with ``T`` and ``B``."""
    if x.dim() != feature_dims + 2:
        raise ShapeError(
            f"{layer} got shape {list(x.shape)}; it needs a time-major "
            f"[T, B, {', '.join(['*'] * feature_dims)}] tensor "
            f"({feature_dims + 2} dims). Encode static inputs over time first "
            "(deepspike.encoding) or add a time axis with x.unsqueeze(0)"
        )
    t, b = x.shape[:2]
    return x.reshape(t * b, *x.shape[2:]), t, b


def unfold_time(y: torch.Tensor, t: int, b: int) -> torch.Tensor:
    return y.reshape(t, b, *y.shape[1:])


@cache
def _compiled_accumulate() -> Callable[..., int] | None:
    """:func:`deepspike.layers.event_kernels.accumulate_spikes` (compiled by numba on first
    use, cached on disk), or ``None`` without numba. Imported on first use, so importing the
    layers does not import numba."""
    if importlib.util.find_spec("numba") is None:
        return None
    from deepspike.layers import event_kernels

    return event_kernels.accumulate_spikes


def event_linear(
    flat: torch.Tensor, table: torch.Tensor, bias: torch.Tensor | None, max_events: int
) -> torch.Tensor | None:
    """The event kernel (:func:`~deepspike.layers.event_kernels.accumulate_spikes`) on CPU
    tensors ``flat [R, in]`` and ``table [in, out]``.

    ``None`` when the event path does not apply: more than ``max_events`` events, an input that
    is not binary spikes, or numba unavailable.
    """
    kernel = _compiled_accumulate()
    if kernel is None:
        return None
    y = flat.new_empty((flat.shape[0], table.shape[1]))
    b = bias.detach() if bias is not None else flat.new_empty(0)
    x_np, t_np, b_np = flat.detach().numpy(), table.numpy(), b.numpy()
    if kernel(x_np, t_np, b_np, max_events, y.numpy()) < 0:
        return None
    return y


class EventTable(NamedTuple):
    r""":math:`W^\top` cached for the event path, valid while ``key`` matches the weight."""

    key: tuple[object, ...]
    table: torch.Tensor


def weight_key(weight: torch.Tensor) -> tuple[object, ...]:
    """What changes whenever the weight does: storage, in-place version, dtype, device, shape.

    Writes through ``weight.data`` bypass the version counter; after one, call
    :meth:`Linear.clear_event_cache`. Optimisers, ``load_state_dict`` and in-place updates under
    ``torch.no_grad()`` all bump the version.
    """
    return (weight.data_ptr(), weight._version, weight.dtype, weight.device, tuple(weight.shape))


class Linear(nn.Linear):
    """Dense synapses :math:`y_t = W x_t + b`, all steps at once: ``[T, B, in] -> [T, B, out]``.

    Event-driven inference: when no gradient is needed, the input is binary (0/1) on the CPU and
    its activity (fraction of ones) is below ``event_threshold``, the output is computed by
    :func:`~deepspike.layers.event_kernels.accumulate_spikes` at a cost proportional to the
    number of input spikes. The result
    equals the dense path up to float summation order. The transposed weight it reads is cached
    (one extra copy of the weight) until the weight changes. ``event_threshold=0`` turns the
    event path off; the default :data:`EVENT_THRESHOLD` is the measured crossover.
    """

    event_threshold: float = EVENT_THRESHOLD

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        event_threshold: float | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        if event_threshold is not None:
            if not 0.0 <= event_threshold <= 1.0:
                raise ConfigError(
                    f"event_threshold={event_threshold} is an input activity; choose a value "
                    "in [0, 1] (0 turns the event-driven path off)"
                )
            self.event_threshold = event_threshold
        self._event_table: EventTable | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}) got shape {list(x.shape)}; "
                f"it needs [T, B, {self.in_features}]"
            )
        if self.event_driven(x):
            flat = x.reshape(-1, self.in_features).contiguous()
            max_events = int(self.event_threshold * flat.numel())
            y = event_linear(flat, self.transposed_weight(), self.bias, max_events)
            if y is not None:
                return y.reshape(*x.shape[:-1], self.out_features)
        return F.linear(x, self.weight, self.bias)

    def event_driven(self, x: torch.Tensor, min_synapses: int | None = None) -> bool:
        """Whether the event path may run on ``x``: no gradient needed, a CPU input of the
        weight's float32/float64 dtype, at least ``min_synapses`` synapses (default
        :data:`EVENT_MIN_SYNAPSES`) and a non-zero ``event_threshold``. The activity and the
        binary values are checked by the kernel itself."""
        weight, bias = self.weight, self.bias
        if torch.is_grad_enabled() and (
            x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
        ):
            return False
        if min_synapses is None:
            min_synapses = EVENT_MIN_SYNAPSES
        return (
            self.event_threshold > 0.0
            and self.in_features * self.out_features >= min_synapses
            and x.dtype in EVENT_DTYPES
            and x.dtype == weight.dtype
            and x.device.type == "cpu"
            and weight.device.type == "cpu"
        )

    def transposed_weight(self) -> torch.Tensor:
        r""":math:`W^\top` ``[in, out]``, contiguous, cached until the weight changes."""
        key = weight_key(self.weight)
        if self._event_table is None or self._event_table.key != key:
            self._event_table = EventTable(key, self.weight.detach().t().contiguous())
        return self._event_table.table

    def clear_event_cache(self) -> None:
        """Drop the cached transposed weight (needed only after writes through ``.data``)."""
        self._event_table = None


class Conv2d(nn.Conv2d):
    """2-D convolution applied to every step: ``[T, B, C, H, W] -> [T, B, C', H', W']``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, f"Conv2d({self.in_channels}, {self.out_channels})")
        if flat.shape[1] != self.in_channels:
            raise ShapeError(
                f"Conv2d({self.in_channels}, {self.out_channels}) got shape {list(x.shape)}; "
                f"it needs [T, B, {self.in_channels}, H, W]"
            )
        return unfold_time(super().forward(flat), t, b)


class MaxPool2d(nn.MaxPool2d):
    """Spike-gated max-pooling: on binary spikes a unit fires when any input in its window
    fires, and the gradient is routed to that input. ``[T, B, C, H, W]`` in and out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, "MaxPool2d")
        return unfold_time(super().forward(flat), t, b)


class AvgPool2d(nn.AvgPool2d):
    """Average pooling on every step (a linear layer: its output feeds the next neurons)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat, t, b = fold_time(x, 3, "AvgPool2d")
        return unfold_time(super().forward(flat), t, b)


class Flatten(nn.Module):
    """``[T, B, *features] -> [T, B, prod(features)]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ShapeError(f"Flatten got shape {list(x.shape)}; it needs [T, B, ...]")
        return x.flatten(2)
