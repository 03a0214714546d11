r""":class:`Sequential`: ``nn.Sequential`` whose event-driven inference fuses each synaptic layer
with the neurons it feeds.

At batch 1 a small network's inference is mostly fixed cost per module call: argument checks,
the allocation of the currents, the neuron's dispatch to its kernel. Each :class:`Linear`
directly followed by an IF or LIF :class:`~deepspike.neurons.Neuron` therefore runs as one
kernel call (:func:`deepspike.layers.event_kernels.linear_neuron_events`): the currents of each
row go straight into the neurons, without leaving a one-row buffer. The spikes are exactly
those of the two modules run in turn on the event path (the same additions in the same order,
the same neuron arithmetic); against the dense GEMM they differ only by the order of the float
additions, like :class:`Linear`'s own event path.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from deepspike.layers.synapse import Linear
from deepspike.neurons.fused.config import RESET_CODES
from deepspike.neurons.fused.dispatch import select_backend
from deepspike.neurons.lif import FloatConstants, float_constants
from deepspike.neurons.module import Neuron


def hooked(module: nn.Module) -> bool:
    """Whether forward hooks would see ``module``'s call (a cost meter's, for instance)."""
    from torch.nn.modules import module as torch_module

    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
    )


def fused_pair(linear: nn.Module, neuron: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The spikes of ``neuron(linear(x))`` from one call of
    :func:`~deepspike.layers.event_kernels.linear_neuron_events`, or ``None`` where the pair
    does not qualify: ``linear`` a :class:`Linear` on its event path (no gradient, binary CPU
    input below its ``event_threshold``; any size, since the fused call has no extra fixed
    cost), ``neuron`` a stateless :class:`~deepspike.neurons.Neuron` emitting spikes, with IF
    or LIF float parameters (:func:`~deepspike.neurons.lif.float_constants`) and the numba
    scan selected, and neither module hooked."""
    if not (isinstance(linear, Linear) and isinstance(neuron, Neuron)):
        return None
    if not linear.event_driven(x, min_synapses=0):  # first: in training this is all it costs
        return None
    if neuron.stateful or neuron.output != "spikes" or neuron.tau_mem is not None:
        return None
    constants = float_constants(neuron.model)
    if constants is None or hooked(linear) or hooked(neuron):
        return None
    backend = select_backend(x)  # numba, where the neurons would take the float scan
    if backend is None or backend.name != "numba":
        return None
    from deepspike.layers.event_kernels import linear_neuron_events

    flat = x.detach().reshape(-1, linear.in_features).contiguous()
    rows_per_step = flat.shape[0] // x.shape[0] if x.shape[0] else 0
    flat_np = flat.numpy()
    bias = linear.bias.detach().numpy() if linear.bias is not None else _no_bias(flat_np.dtype)
    spikes = np.empty((flat_np.shape[0], linear.out_features), dtype=flat_np.dtype)
    status = linear_neuron_events(
        flat_np,
        linear.transposed_weight().numpy(),
        bias,
        int(linear.event_threshold * flat_np.size),
        rows_per_step,
        _kernel_constants(constants, flat_np.dtype),
        RESET_CODES[constants.reset],
        spikes,
    )
    if status < 0:
        return None
    return torch.from_numpy(spikes).view(*x.shape[:-1], linear.out_features)


@functools.lru_cache(maxsize=64)
def _kernel_constants(constants: FloatConstants, dtype: np.dtype) -> np.ndarray:
    """``(v_reset, 0, 1, beta, v_th, v_init)`` in ``dtype``, as the kernel reads them; cached
    (the kernel never writes it)."""
    c = constants
    return np.array((c.v_reset, 0.0, 1.0, c.beta, c.v_th, c.v_init), dtype=dtype)


@functools.lru_cache(maxsize=4)
def _no_bias(dtype: np.dtype) -> np.ndarray:
    return np.empty(0, dtype=dtype)


class Sequential(nn.Sequential):
    """``nn.Sequential`` for time-major spiking models; in event-driven inference each
    :class:`Linear` -> IF/LIF :class:`~deepspike.neurons.Neuron` pair runs fused
    (:func:`fused_pair`), every other module (and every pair that does not qualify) as usual.
    Training and gradients take the plain module-by-module path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            fused = fused_pair(modules[i], modules[i + 1], x) if i + 1 < len(modules) else None
            if fused is not None:
                x, i = fused, i + 2
            else:
                x, i = modules[i](x), i + 1
        return x
