"""The cost report: per-layer records and per-sample totals (see :mod:`deepspike.metrics`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LAYER_KINDS: tuple[str, ...] = ("linear", "conv2d", "recurrent", "neuron")


@dataclass(frozen=True)
class LayerCost:
    """Costs of one hooked module, per sample (summed over time, averaged over samples).

    Attributes:
        name: the module's qualified name in the model (``model.named_modules()``).
        kind: ``"linear"``, ``"conv2d"``, ``"recurrent"`` (synaptic) or ``"neuron"``.
        input_events: non-zero input elements (for ``"recurrent"``: feed-forward input events
            plus the layer's own spikes fed back at steps ``0..T-2``).
        acs: accumulates, from events of binary inputs (one per synapse of the fan-out).
        macs: multiply-accumulates, from events of non-binary inputs.
        ann_macs: MACs of the same layer in the equivalent ANN, once per inference.
        neuron_updates: neuron state updates (neurons x time steps).
        spikes: output spikes (non-zero outputs); ``None`` for a neuron layer that outputs its
            membrane potential (a read-out), which emits none.
        n_neurons: neurons per sample in this layer.
    """

    name: str
    kind: str
    input_events: float = 0.0
    acs: float = 0.0
    macs: float = 0.0
    ann_macs: float = 0.0
    neuron_updates: float = 0.0
    spikes: float | None = None
    n_neurons: int = 0

    @property
    def synops(self) -> float:
        """Synaptic operations: ``acs + macs``."""
        return self.acs + self.macs

    @property
    def spikes_per_neuron(self) -> float | None:
        """Spikes per neuron over the whole presentation, or ``None`` without spikes/neurons."""
        if self.spikes is None or not self.n_neurons:
            return None
        return self.spikes / self.n_neurons

    @property
    def sparsity(self) -> float | None:
        """Activation sparsity ``1 - spikes / (neurons * T)``, or ``None`` without spikes."""
        if self.spikes is None or not self.neuron_updates:
            return None
        return 1.0 - self.spikes / self.neuron_updates

    def to_dict(self) -> dict[str, Any]:
        """The fields and the derived ``synops``, ``spikes_per_neuron`` and ``sparsity``."""
        d = dataclasses.asdict(self)
        d.update(
            synops=self.synops, spikes_per_neuron=self.spikes_per_neuron, sparsity=self.sparsity
        )
        return d


@dataclass(frozen=True)
class CostReport:
    """Costs of one inference, per sample.

    Attributes:
        layers: one :class:`LayerCost` per hooked module that ran, in module order.
        synops: ``acs + macs`` over all layers.
        acs, macs, ann_macs, neuron_updates: sums of the layers' fields.
        spikes_per_neuron: total spikes / total neurons, over neuron layers that emit spikes
            (``None`` when there are none).
        sparsity: ``1 - spikes / (neurons * T)`` over the same layers (``None`` when none).
        timesteps: ``T`` of the first time-major model input (1 for non-time-major input).
        samples: number of samples the averages are over.
        params: number of parameters.
        memory_bytes: bytes of the parameters plus buffers (the model's weight memory).
        peak_activation_bytes: per sample, the largest input plus output of one module call
            during the inference; an estimate of the activation memory one inference needs.
    """

    layers: tuple[LayerCost, ...]
    synops: float
    acs: float
    macs: float
    ann_macs: float
    neuron_updates: float
    spikes_per_neuron: float | None
    sparsity: float | None
    timesteps: int
    samples: int
    params: int
    memory_bytes: int
    peak_activation_bytes: float

    def layer(self, name: str) -> LayerCost:
        """The record of the layer called ``name``; ``KeyError`` if there is none."""
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(f"no layer named {name!r}; layers: {[r.name for r in self.layers]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (lists, numbers, strings and ``None`` only)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "layers"}
        d["layers"] = [rec.to_dict() for rec in self.layers]
        return d


def build_report(
    layers: Sequence[LayerCost],
    *,
    timesteps: int,
    samples: int,
    params: int,
    memory_bytes: int,
    peak_activation_bytes: float = 0.0,
) -> CostReport:
    """Sum per-layer records (already per sample) into a :class:`CostReport`."""
    spiking = [r for r in layers if r.spikes is not None and r.n_neurons]
    spikes = sum(r.spikes or 0.0 for r in spiking)
    neurons = sum(r.n_neurons for r in spiking)
    updates = sum(r.neuron_updates for r in spiking)
    acs = sum(r.acs for r in layers)
    macs = sum(r.macs for r in layers)
    return CostReport(
        layers=tuple(layers),
        synops=acs + macs,
        acs=acs,
        macs=macs,
        ann_macs=sum(r.ann_macs for r in layers),
        neuron_updates=sum(r.neuron_updates for r in layers),
        spikes_per_neuron=spikes / neurons if neurons else None,
        sparsity=1.0 - spikes / updates if updates else None,
        timesteps=timesteps,
        samples=samples,
        params=params,
        memory_bytes=memory_bytes,
        peak_activation_bytes=peak_activation_bytes,
    )
