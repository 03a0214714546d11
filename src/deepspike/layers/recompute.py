r"""Lean backpropagation through time: keep a block's input as bits, recompute the rest.

Training memory of a spiking network is dominated by what autograd keeps for every time step:
each synaptic layer keeps its input ``[T, B, in]``, each neuron layer its membrane
``[T, B, n]``, all in float32. :class:`Recompute` wraps a block (typically ``Linear`` or
``Conv2d`` followed by a ``Neuron``) so that the backward pass keeps only the block's input, and
keeps it as one byte per element when it is binary (spikes), instead of four. In the backward
pass the block runs forward again from that input, with the same random state, and
backpropagates through the recomputed graph (activation checkpointing, Chen et al. 2016,
"Training deep nets with sublinear memory cost", applied per layer to spike tensors).

Cost: one more forward pass of the block per training step (the synaptic GEMM or convolution
and the neuron scan). Gradients are those of the plain block (the same operations run again on
the same values), so it is a memory/time trade: with ``[T = 100, B = 128]`` and 784-800-10,
the saved tensors shrink from about 120 MiB to about 20 MiB (``benchmarks/``).

Outside autograd (``torch.no_grad``, inference, plasticity rules) the block simply runs.
Blocks must not carry state between calls (``Neuron(stateful=True)`` is refused): the
recomputation would advance it twice.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepspike.errors import ConfigError


def pack(x: torch.Tensor) -> tuple[torch.Tensor, torch.dtype | None]:
    """``x`` as ``bool`` (one byte per element) when it holds only 0 and 1, else unchanged;
    with the dtype to restore (``None`` when unchanged)."""
    from deepspike.metrics.counting import is_binary

    if x.is_floating_point() and is_binary(x):
        return x.to(torch.bool), x.dtype
    return x, None


def unpack(stored: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return stored if dtype is None else stored.to(dtype)


class _RecomputeBlock(torch.autograd.Function):
    """``(block, x, *parameters) -> block(x)``, saving only ``x`` (packed) and the RNG state."""

    @staticmethod
    def forward(ctx: Any, block: nn.Module, x: torch.Tensor, *parameters: torch.Tensor):
        ctx.block, ctx.parameters = block, parameters
        ctx.rng = torch.get_rng_state()
        ctx.cuda_rng = torch.cuda.get_rng_state(x.device) if x.is_cuda else None
        stored, ctx.dtype = pack(x.detach())
        ctx.save_for_backward(stored)
        with torch.no_grad():
            return block(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):
        (stored,) = ctx.saved_tensors
        x = unpack(stored, ctx.dtype).detach().requires_grad_(ctx.needs_input_grad[1])
        parameters = [p for p in ctx.parameters if p.requires_grad]
        rng = torch.get_rng_state()
        torch.set_rng_state(ctx.rng)  # the same dropout masks (and noise) as in the forward
        if ctx.cuda_rng is not None:
            cuda_rng = torch.cuda.get_rng_state(x.device)
            torch.cuda.set_rng_state(ctx.cuda_rng, x.device)
        try:
            with torch.enable_grad():
                out = ctx.block(x)
        finally:
            torch.set_rng_state(rng)
            if ctx.cuda_rng is not None:
                torch.cuda.set_rng_state(cuda_rng, x.device)
        inputs = ([x] if x.requires_grad else []) + parameters
        grads = torch.autograd.grad(out, inputs, grad_out, allow_unused=True)
        grad_x = grads[0] if x.requires_grad else None
        by_parameter = dict(
            zip(map(id, parameters), grads[len(inputs) - len(parameters) :], strict=True)
        )
        return (None, grad_x, *(by_parameter.get(id(p)) for p in ctx.parameters))


class Recompute(nn.Module):
    """Run ``block`` keeping only its (bit-packed) input for the backward pass; see the module
    docstring. ``Recompute(nn.Sequential(Linear(784, 800), Neuron(LIFParams())))``."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        stateful = [name for name, m in block.named_modules() if getattr(m, "stateful", False)]
        if stateful:
            raise ConfigError(
                f"Recompute cannot wrap a block that carries state between calls ({stateful[0]!r}"
                " has stateful=True): the recomputation would advance it twice; use "
                "stateful=False inside, or leave this block out of Recompute"
            )
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parameters = tuple(self.block.parameters())
        if not torch.is_grad_enabled() or not (
            x.requires_grad or any(p.requires_grad for p in parameters)
        ):
            return self.block(x)
        return _RecomputeBlock.apply(self.block, x, *parameters)
