"""ANN-to-SNN conversion: trained PyTorch networks into time-major spiking networks.

Quick use::

    from deepspike.conversion import ConversionConfig, convert, encode, simulate
    snn = convert(ann, x_train[:2000], ConversionConfig(normalisation="percentile"))
    out = snn(encode(x_test, timesteps=64))          # [T, B, classes]
    decision = snn.logits(out)[-1].argmax(-1)        # after the last step
    course = simulate(snn, x_test, y_test, timesteps=128, cost_timesteps=32)
    course.accuracy_at(32), course.synops_at(32), course.cost   # CostMeter report at T=32

Supported layers: ``Linear``, ``Conv2d``, ``BatchNorm1d/2d`` (folded), ``ReLU``, ``QCFS``,
``SoftLIF``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``MaxPool2d`` (rate-gated), ``Flatten``,
``Dropout`` (removed) and residual additions in fx-traceable models. See ``docs/conversion.md``.
"""

from deepspike.conversion.activations import (
    QCFS,
    SoftLIF,
    floor_ste,
    lif_rate,
    qcfs,
    soft_lif_rate,
)
from deepspike.conversion.config import INPUTS, NORMALISATIONS, READOUTS, ConversionConfig
from deepspike.conversion.convert import convert
from deepspike.conversion.fold import batchnorm_affine, fold_batchnorm
from deepspike.conversion.graph import SUPPORTED, AnnGraph, Op, parse_ann
from deepspike.conversion.normalise import (
    activation_scales,
    balance_thresholds,
    choose_scales,
    percentile,
)
from deepspike.conversion.simulate import TimeCourse, encode, first_within, simulate
from deepspike.conversion.spiking import (
    OUTPUT,
    RateGatedMaxPool2d,
    Scale,
    SpikingNetwork,
    build_snn,
)

__all__ = [
    "INPUTS",
    "NORMALISATIONS",
    "OUTPUT",
    "QCFS",
    "READOUTS",
    "SUPPORTED",
    "AnnGraph",
    "ConversionConfig",
    "Op",
    "RateGatedMaxPool2d",
    "Scale",
    "SoftLIF",
    "SpikingNetwork",
    "TimeCourse",
    "activation_scales",
    "balance_thresholds",
    "batchnorm_affine",
    "build_snn",
    "choose_scales",
    "convert",
    "encode",
    "first_within",
    "floor_ste",
    "fold_batchnorm",
    "lif_rate",
    "parse_ann",
    "percentile",
    "qcfs",
    "simulate",
    "soft_lif_rate",
]
