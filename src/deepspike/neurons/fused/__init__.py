"""Fused multi-step kernels for the threshold neurons (IF, LIF, ALIF).

:func:`threshold_scan` runs the whole recurrence over ``T`` steps in one call with a hand-written
backward (``scan.py``) on one of three backends chosen per input (``dispatch.py``): numba on CPU,
Triton on CUDA, a plain-torch loop elsewhere. ``LIFParams.multi_step``, ``IFParams.multi_step`` and
``ALIFParams.multi_step`` use it when it applies and fall back to the reference ``step_loop``
otherwise. ``DEEPSPIKE_FUSED=0`` forces the reference path; see :mod:`.dispatch`.
"""

from deepspike.neurons.fused import dispatch
from deepspike.neurons.fused.dispatch import (
    BACKENDS,
    ENV_VAR,
    FUSED_DTYPES,
    Backend,
    requested,
    select_backend,
)
from deepspike.neurons.fused.scan import ScanResult, neuron_vector, threshold_scan

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "FUSED_DTYPES",
    "Backend",
    "ScanResult",
    "dispatch",
    "neuron_vector",
    "requested",
    "select_backend",
    "threshold_scan",
]
