"""Spike rasters: which neurons of each spiking layer fire at which step, for one input."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.neurons.module import Neuron


@torch.no_grad()
def spike_raster(
    model: nn.Module, inputs: torch.Tensor, max_events: int = 20000
) -> dict[str, list[list[int]]]:
    """Run ``model`` on ``inputs`` (``[T, 1, ...]``, one sample) and return, per spiking
    :class:`~deepspike.neurons.Neuron` layer, the ``[t, neuron]`` pairs of its spikes (flattened
    neuron index), at most ``max_events`` per layer. Read-outs that emit membranes are left out.
    """
    raster: dict[str, list[list[int]]] = {}

    def record(name: str):
        def hook(module: nn.Module, args, output: torch.Tensor) -> None:
            if module.output != "spikes":
                return
            events = output[:, 0].reshape(output.shape[0], -1).nonzero()
            raster[name] = events[:max_events].tolist()

        return hook

    handles = [
        module.register_forward_hook(record(name or type(module).__name__))
        for name, module in model.named_modules()
        if isinstance(module, Neuron)
    ]
    try:
        was_training = model.training
        model.eval()
        model(inputs)
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return raster
