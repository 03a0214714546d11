"""The plain data every scan backend receives: flags, and per-neuron parameter vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.surrogate import Surrogate

RESET_CODES: dict[str, int] = {"subtract": 0, "zero": 1, "none": 2}
"""Reset mode -> the integer the kernels branch on."""


@dataclass(frozen=True)
class ScanConfig:
    """What the scan does, besides its tensors.

    ``reset_code`` is ``RESET_CODES[reset]``; ``adaptive`` adds the ALIF threshold adaptation;
    ``record`` returns the whole membrane (and adaptation) trace instead of the final values.
    """

    reset_code: int
    adaptive: bool
    detach_reset: bool
    record: bool
    surrogate: Surrogate


class ScanTensors(NamedTuple):
    """Per-neuron parameters, each a contiguous ``[M]`` vector in the input's dtype and device
    (``[0]`` where unused), and ``consts = (v_reset, 0, 1)`` so kernels compute in that dtype
    (followed by the surrogate's ``(c, a)`` where the numba backward evaluates it inline).

    ``beta`` may carry autograd history (a learnable time constant); the others may not.
    """

    beta: torch.Tensor
    v_th: torch.Tensor
    beta_adapt: torch.Tensor
    rho: torch.Tensor
    gain: torch.Tensor  # 1 - rho, computed as the reference step computes it
    consts: torch.Tensor
