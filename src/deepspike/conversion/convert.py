"""``convert``: a trained ANN in, a spiking network out (the three steps in one call)."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.conversion.config import ConversionConfig
from deepspike.conversion.graph import AnnGraph, parse_ann
from deepspike.conversion.normalise import choose_scales
from deepspike.conversion.spiking import SpikingNetwork, build_snn
from deepspike.errors import ShapeError, check_finite


def convert(
    model: nn.Module | AnnGraph,
    calibration: torch.Tensor,
    config: ConversionConfig | None = None,
    generator: torch.Generator | None = None,
) -> SpikingNetwork:
    """Convert a trained ANN into a time-major spiking network of IF (or LIF) neurons.

    1. :func:`~deepspike.conversion.parse_ann`: trace the model, fold BatchNorm, drop Dropout;
    2. :func:`~deepspike.conversion.choose_scales`: normalise every layer on ``calibration``
       (training inputs ``[N, ...]``, as the ANN takes them) by ``config.normalisation``;
    3. :func:`~deepspike.conversion.build_snn`: map each op to its spiking counterpart.

    Args:
        model: the ANN (``nn.Sequential`` or any fx-traceable module taking ``[B, ...]``), or
            an :class:`AnnGraph` already parsed from one (to convert it several ways).
        calibration: inputs for the activation statistics (a few thousand suffice).
        config: the conversion options (:class:`ConversionConfig`; default: percentile 99.9,
            reset by subtraction, membrane read-out).
        generator: random source for ``rate`` input during threshold balancing.

    Returns:
        the :class:`SpikingNetwork`; feed it ``[T, B, ...]`` (see
        :func:`~deepspike.conversion.encode`).
    """
    config = config or ConversionConfig()
    if calibration.dim() < 2 or len(calibration) == 0:
        raise ShapeError(
            f"calibration data has shape {list(calibration.shape)}; it needs a batch of inputs "
            "[N, ...] as the ANN takes them"
        )
    check_finite(calibration, "calibration data")
    graph = model if isinstance(model, AnnGraph) else parse_ann(model, calibration[:2])
    scales = choose_scales(graph, calibration, config, generator)
    return build_snn(graph, scales, config)
