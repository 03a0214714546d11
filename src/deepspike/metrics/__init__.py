"""Cost metrics of spiking networks, following NeuroBench (Yik et al., Nat. Commun. 2025).

* :class:`CostMeter` / :func:`measure`: forward hooks that count, per sample, each synaptic
  layer's input events, synaptic operations (ACs for binary spike input, MACs otherwise; an event
  costs one operation per synapse of its fan-out) and the equivalent ANN's dense MACs (once per
  inference), and each neuron layer's updates, spikes and neurons;
* :class:`CostReport` / :class:`LayerCost`: the per-layer records and per-sample totals
  (synops, sparsity, spikes per neuron, time steps, parameters, memory);
* :data:`HARDWARE_PROFILES`, :func:`energy_uj`, :func:`ann_energy_uj`, :func:`energy_table`:
  energy estimates from published per-operation energies (Horowitz 2014; Loihi; TrueNorth).

Example::

    from deepspike.metrics import measure, energy_table
    report = measure(model, x)          # x: [T, B, ...]
    report.synops, report.sparsity, energy_table(report)
"""

from deepspike.metrics.counting import (
    conv2d_ann_macs,
    conv2d_synops,
    conv2d_synops_bruteforce,
    count_events,
    dense_ann_macs,
    dense_synops,
    is_accumulate_only,
    is_binary,
)
from deepspike.metrics.energy import (
    HARDWARE_PROFILES,
    HardwareProfile,
    ann_energy_uj,
    energy_table,
    energy_uj,
    get_profile,
)
from deepspike.metrics.meter import CostMeter, measure
from deepspike.metrics.raster import spike_raster
from deepspike.metrics.report import CostReport, LayerCost, build_report

__all__ = [
    "HARDWARE_PROFILES",
    "CostMeter",
    "CostReport",
    "HardwareProfile",
    "LayerCost",
    "ann_energy_uj",
    "build_report",
    "conv2d_ann_macs",
    "conv2d_synops",
    "conv2d_synops_bruteforce",
    "count_events",
    "dense_ann_macs",
    "dense_synops",
    "energy_table",
    "energy_uj",
    "get_profile",
    "is_accumulate_only",
    "is_binary",
    "measure",
    "spike_raster",
]
