r"""Choose the activation scale :math:`\lambda_l` of every layer (weight/threshold balancing).

A converted IF neuron can fire at most once per step, so each layer's activations must be
mapped into :math:`[0, 1]` spikes per step: :math:`r_l = a_l / \lambda_l`. The methods:

* ``max`` (Diehl et al. 2015, *Fast-classifying, high-accuracy spiking deep networks through
  weight and threshold balancing*, IJCNN): :math:`\lambda_l = \max a_l` over a training subset,
  layer by layer. Nothing saturates, but one outlier makes every other rate small (slow).
* ``percentile`` (Rueckauer et al. 2017): :math:`\lambda_l` = the :math:`p`-th percentile of the
  layer's positive activations (default :math:`p = 99.9`), trading a few saturated neurons for
  much higher rates.
* ``threshold-balancing`` (Sengupta et al. 2019, *Going deeper in spiking neural networks: VGG
  and residual architectures*, Front. Neurosci. 13:95): run the SNN itself, layer by layer; with
  the layers below already balanced, set layer :math:`l`'s threshold to the largest input
  current its neurons receive over time and samples (here: the equivalent scale).
* ``trained``: the learned clip :math:`\lambda` of a :class:`~deepspike.conversion.QCFS`
  activation (Bu et al. 2022).
* ``none``: :math:`\lambda_l = 1` (the ANN's weights unchanged).

The output layer gets a scale the same way (from the positive class scores); it matters only
for a spiking read-out.
"""

from __future__ import annotations

import math

import torch

from deepspike.conversion.activations import SoftLIF
from deepspike.conversion.config import ConversionConfig
from deepspike.conversion.graph import AnnGraph
from deepspike.conversion.simulate import encode
from deepspike.conversion.spiking import OUTPUT, READOUT, build_snn
from deepspike.errors import ConfigError


def percentile(values: torch.Tensor, q: float) -> float:
    """The ``q``-th percentile of ``values`` with linear interpolation between order
    statistics, as ``numpy.percentile`` computes it by default (no size limit, unlike
    ``torch.quantile``)."""
    flat = values.detach().flatten()
    if flat.numel() == 0:
        raise ConfigError("percentile of an empty set of values")
    position = q / 100.0 * (flat.numel() - 1)
    lower = math.floor(position)
    upper = min(lower + 1, flat.numel() - 1)
    low = float(torch.kthvalue(flat, lower + 1).values)
    high = float(torch.kthvalue(flat, upper + 1).values)
    return low + (high - low) * (position - lower)


def batches_of(x: torch.Tensor, size: int):
    for start in range(0, len(x), size):
        yield x[start : start + size]


def normalised_sites(graph: AnnGraph) -> tuple[str, ...]:
    """Activations whose scale normalisation sets (all but soft-LIF ones), then the output."""
    acts = tuple(n for n in graph.activations if not isinstance(graph.op(n).module, SoftLIF))
    return (*acts, OUTPUT) if graph.output not in acts else acts


@torch.no_grad()
def activation_scales(
    graph: AnnGraph,
    data: torch.Tensor,
    method: str = "percentile",
    q: float = 99.9,
    batch_size: int = 256,
) -> dict[str, float]:
    """:math:`\\lambda` of every normalised activation (and the output) from the ANN's
    activations on ``data``: their maximum (``method="max"``) or the ``q``-th percentile of
    their positive values (``"percentile"``). A layer that never activates gets 1."""
    if method not in ("max", "percentile"):
        raise ConfigError(f"activation_scales: method={method!r}; choose 'max' or 'percentile'")
    sites = normalised_sites(graph)
    positives: dict[str, list[torch.Tensor]] = {s: [] for s in sites}
    for batch in batches_of(data, batch_size):
        values = graph(batch, keep=sites)
        for site in sites:
            v = values[site]
            positives[site].append(v[v > 0] if method == "percentile" else v.max().reshape(1))
    scales = {}
    for site, chunks in positives.items():
        v = torch.cat(chunks)
        v = v[v > 0]
        if v.numel() == 0:
            scales[site] = 1.0
        else:
            scales[site] = percentile(v, q) if method == "percentile" else float(v.max())
    return scales


def trained_scales(graph: AnnGraph, data: torch.Tensor, batch_size: int) -> dict[str, float]:
    """The learned :math:`\\lambda` of each QCFS activation; the output by its maximum."""
    scales = {}
    for name in normalised_sites(graph):
        if name == OUTPUT:
            continue
        module = graph.op(name).module
        if not hasattr(module, "trained_scale"):
            raise ConfigError(
                f"normalisation='trained' needs activations with a trained scale (QCFS); "
                f"{type(module).__name__} {name!r} has none: use max or percentile"
            )
        scales[name] = module.trained_scale
    if OUTPUT in normalised_sites(graph):
        scales[OUTPUT] = activation_scales(graph, data, "max", batch_size=batch_size)[OUTPUT]
    return scales


@torch.no_grad()
def max_input_current(snn: torch.nn.Module, neurons: str, x: torch.Tensor, batch: int) -> float:
    """The largest input current the neuron layer ``neurons`` of ``snn`` receives on the
    time-major input ``x`` ``[T, N, ...]``."""
    layer = snn.network.get_submodule(neurons)
    peak = [-math.inf]

    def hook(module, args):
        peak[0] = max(peak[0], float(args[0].max()))

    handle = layer.register_forward_pre_hook(hook)
    try:
        for start in range(0, x.shape[1], batch):
            snn(x[:, start : start + batch])
    finally:
        handle.remove()
    return peak[0]


def balance_thresholds(
    graph: AnnGraph,
    data: torch.Tensor,
    config: ConversionConfig,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Sengupta et al. (2019) threshold balancing, layer by layer, on the SNN itself.

    Every scale starts at 1 (the ANN's weights). For each layer in order, the SNN with the
    layers below already balanced runs for ``config.balance_timesteps`` steps on ``data``
    (encoded as ``config.input``); the largest input current its neurons see is their new
    threshold, i.e. their scale becomes that current times the provisional 1.
    """
    x = encode(data, config.balance_timesteps, config.input, config.max_rate, generator)
    scales = dict.fromkeys(normalised_sites(graph), 1.0)
    for site in scales:
        snn = build_snn(graph, scales, config)
        peak = max_input_current(snn, READOUT if site == OUTPUT else site, x, config.batch_size)
        if peak > 0:
            scales[site] = peak
    return scales


def choose_scales(
    graph: AnnGraph,
    data: torch.Tensor,
    config: ConversionConfig,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """The scales of ``config.normalisation`` on calibration ``data`` ``[N, ...]``."""
    method = config.normalisation
    if method == "none":
        return {}
    if method == "trained":
        return trained_scales(graph, data, config.batch_size)
    if method == "threshold-balancing":
        return balance_thresholds(graph, data, config, generator)
    return activation_scales(graph, data, method, config.percentile, config.batch_size)
