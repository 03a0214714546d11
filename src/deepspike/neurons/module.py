"""Thin ``nn.Module`` wrappers over the functional neuron models.

A :class:`Neuron` holds a parameter set (any :class:`~deepspike.neurons.base.NeuronModel`) and
maps a time-major input ``[T, B, ...]`` to spikes ``[T, B, ...]``. By default each call starts
from rest, so there is nothing to reset between batches. ``stateful=True`` carries the final state
(detached) into the next call, for streaming; :meth:`Neuron.reset` clears it.

``learn_tau=True`` makes the membrane time constant a learnable per-neuron parameter
(Fang et al. 2021's learnable leak); it is stored as ``tau_mem`` and used through
``dataclasses.replace`` so the functional core stays pure.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import nn

from deepspike.errors import ConfigError
from deepspike.neurons.base import NeuronModel, detach_state, run

Output = Literal["spikes", "membrane"]


class Neuron(nn.Module):
    """A layer of spiking neurons around a functional model.

    Args:
        model: the neuron parameters, e.g. ``LIFParams(tau_mem=5.0)``.
        output: ``"spikes"`` (default) or ``"membrane"``, the membrane trace ``v`` over time
            (for read-out layers trained on the potential, as in Lee et al. 2016).
        stateful: carry the state between calls instead of starting from rest.
        learn_tau: learn the membrane time constant (models with a ``tau_mem`` field).
        shape: per-sample shape of the neurons, required with ``learn_tau``.
        bptt_window: truncated BPTT: cut the gradient through the state every this many steps.
    """

    def __init__(
        self,
        model: NeuronModel,
        output: Output = "spikes",
        stateful: bool = False,
        learn_tau: bool = False,
        shape: tuple[int, ...] | None = None,
        bptt_window: int | None = None,
    ) -> None:
        super().__init__()
        if output not in ("spikes", "membrane"):
            raise ConfigError(f"output={output!r} is unknown; choose 'spikes' or 'membrane'")
        self.model = model
        self.output = output
        self.stateful = stateful
        self.bptt_window = bptt_window
        self.state: Any = None
        if learn_tau:
            if not hasattr(model, "tau_mem") or shape is None:
                raise ConfigError(
                    "learn_tau needs a model with tau_mem and the neurons' shape, "
                    "e.g. Neuron(LIFParams(), learn_tau=True, shape=(800,))"
                )
            init = torch.full(shape, float(model.tau_mem))
            self.tau_mem = nn.Parameter(init)
        else:
            self.tau_mem = None

    def params(self) -> NeuronModel:
        """The functional parameters for this call (with the learnable time constant, if any)."""
        if self.tau_mem is None:
            return self.model
        return dataclasses.replace(self.model, tau_mem=self.tau_mem.clamp(min=1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = run(
            self.params(),
            x,
            self.state if self.stateful else None,
            record=self.output != "spikes",
            bptt_window=self.bptt_window,
        )
        if self.stateful:
            self.state = detach_state(result.state)
        return result.spikes if self.output == "spikes" else result.trace.v

    def reset(self) -> None:
        """Forget the carried state (only meaningful with ``stateful=True``)."""
        self.state = None

    def extra_repr(self) -> str:
        return f"{self.model}, output={self.output!r}, stateful={self.stateful}"
