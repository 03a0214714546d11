"""Choosing a scan backend for an input tensor, with ``DEEPSPIKE_FUSED`` to override the choice.

``DEEPSPIKE_FUSED`` is read on every call (there is no global switch to flip):

* unset, ``1``, ``on``, ``auto``: the fastest backend for the input's device: numba on CPU,
  Triton on CUDA when ``triton`` imports, the plain-torch loop otherwise;
* ``0``, ``off``, ``reference``: no fused kernel, every model runs its per-step ``step_loop``;
* ``numba``, ``torch``, ``triton``: that backend (a :class:`ConfigError` where it cannot run).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import NamedTuple

import torch

from deepspike.errors import ConfigError

ENV_VAR = "DEEPSPIKE_FUSED"
BACKENDS: tuple[str, ...] = ("numba", "torch", "triton")
_OFF = ("0", "off", "false", "no", "reference")
_AUTO = ("", "1", "on", "true", "yes", "auto")
FUSED_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


CHUNK_ELEMENTS: dict[str, int] = {"numba": 1 << 18, "torch": 1 << 18, "triton": 1 << 28}
"""Elements (steps x neurons) per chunk of the backward's surrogate evaluation: on CPU a chunk's
temporaries (1 MiB in float32) stay in cache and in the allocator's reuse pool (measured 2x
faster than one pass over ``[T, M]``, see ``docs/kernels.md``); on a GPU one chunk is the run."""


class Backend(NamedTuple):
    """A scan implementation: ``forward`` and ``backward`` with the signatures of
    :func:`deepspike.neurons.fused.cpu_numba.forward` and ``backward``, and the size of the time
    chunks the scan is run in."""

    name: str
    forward: Callable[..., None]
    backward: Callable[..., None]
    chunk_elements: int


def requested(choice: str | None = None) -> str:
    """The requested mode: ``"auto"``, ``"off"`` or a backend name (``choice`` wins over the
    environment)."""
    raw = os.environ.get(ENV_VAR, "") if choice is None else choice
    value = raw.strip().lower()
    if value in _AUTO:
        return "auto"
    if value in _OFF:
        return "off"
    if value in BACKENDS:
        return value
    raise ConfigError(
        f"{ENV_VAR}={raw!r} is unknown; use 0 (reference loop), 1 (automatic) or one of "
        f"{', '.join(BACKENDS)}"
    )


@functools.cache
def _load(name: str) -> Backend:
    if name == "numba":
        from deepspike.neurons.fused import cpu_numba as module
    elif name == "torch":
        from deepspike.neurons.fused import cpu_torch as module  # type: ignore[no-redef]
    else:
        from deepspike.neurons.fused import gpu_triton as module  # type: ignore[no-redef]
    return Backend(name, module.forward, module.backward, CHUNK_ELEMENTS[name])


@functools.cache
def numba_installed() -> bool:
    """Whether numba can be imported (looked up once: installing it needs a restart anyway)."""
    return importlib.util.find_spec("numba") is not None


def _runs_on(name: str, x: torch.Tensor) -> bool:
    if name == "numba":
        return x.device.type == "cpu" and numba_installed()
    if name == "triton":
        from deepspike.neurons.fused import gpu_triton

        return x.is_cuda and gpu_triton.available()
    return True


def select_backend(x: torch.Tensor, choice: str | None = None) -> Backend | None:
    """The backend for input ``x``, or ``None`` for the reference loop (also for dtypes other
    than float32/float64, which the kernels do not handle)."""
    mode = requested(choice)
    if mode == "off" or x.dtype not in FUSED_DTYPES:
        return None
    if mode == "auto":
        preferred = "numba" if x.device.type == "cpu" else "triton" if x.is_cuda else "torch"
        return _load(preferred if _runs_on(preferred, x) else "torch")
    if not _runs_on(mode, x):
        raise ConfigError(
            f"{ENV_VAR}={mode} cannot run on a {x.device.type} tensor here "
            f"(numba needs CPU tensors, triton CUDA tensors and the triton package); "
            "unset it to choose automatically"
        )
    return _load(mode)
