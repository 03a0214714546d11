"""Validation helpers shared by the encoders (private).

Each raises one of the typed errors of :mod:`deepspike.errors` with a message that names the
problem and the fix.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch

from deepspike.errors import ConfigError, InputValueError, ShapeError, check_finite

_RANGE_HINT = "rescale it first, e.g. x = (x - x.min()) / (x.max() - x.min()) or x.clamp(0, 1)"


def as_tensor(x: Any, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a floating tensor (integer and bool inputs become float32)."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputValueError(
                f"{name} of type {type(x).__name__} cannot be converted to a tensor; "
                "pass a torch.Tensor or a numeric numpy array"
            ) from exc
    if x.is_complex():
        raise InputValueError(f"{name} is complex; pass real intensities (e.g. x.abs())")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    check_finite(x, name)
    return x


def check_steps(T: Any, name: str = "T") -> int:
    """Return ``T`` as a Python int, raising :class:`ConfigError` unless it is an integer >= 1."""
    if isinstance(T, bool):
        raise ConfigError(f"{name}={T!r} must be a positive integer number of time steps")
    try:
        steps = operator.index(T)
    except TypeError:
        raise ConfigError(
            f"{name}={T!r} must be a positive integer number of time steps, e.g. {name}=100"
        ) from None
    if steps <= 0:
        raise ConfigError(f"{name}={steps} must be >= 1 time step, e.g. {name}=100")
    return steps


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising :class:`ConfigError` unless it is an integer >= min."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}") from None
    if out < minimum:
        raise ConfigError(f"{name}={out} must be an integer >= {minimum}")
    return out


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float, raising :class:`ConfigError` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be a finite real number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a finite real number") from None
    if not math.isfinite(out):
        raise ConfigError(f"{name}={value!r} must be a finite real number")
    return out


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float, raising :class:`ConfigError` unless it is finite and > 0."""
    out = check_real(value, name)
    if out <= 0:
        raise ConfigError(f"{name}={out} must be > 0")
    return out


def check_dtype(dtype: Any) -> torch.dtype:
    """Raise :class:`ConfigError` unless ``dtype`` is a floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(
            f"dtype={dtype!r} must be a floating torch dtype such as torch.float32 or "
            "torch.float16; spikes are stored as 0.0/1.0"
        )
    return dtype


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not supported; choose one of {options}")
    return value


def check_range(x: torch.Tensor, low: float, high: float, name: str = "x") -> None:
    """Raise :class:`InputValueError` if any value of ``x`` lies outside ``[low, high]``."""
    if x.numel() == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < low or hi > high:
        n_bad = int(((x < low) | (x > high)).sum())
        raise InputValueError(
            f"{name} has {n_bad} value(s) outside [{low:g}, {high:g}] (min {lo:g}, max {hi:g}); "
            + (_RANGE_HINT if (low, high) == (0.0, 1.0) else "clip it or widen the range")
        )


def check_unit_interval(x: Any, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a floating tensor after checking it is finite and within ``[0, 1]``."""
    t = as_tensor(x, name)
    check_range(t, 0.0, 1.0, name)
    return t


def check_min_dim(x: torch.Tensor, n: int, layout: str, name: str = "x") -> None:
    """Raise :class:`ShapeError` unless ``x`` has at least ``n`` dimensions."""
    if x.dim() < n:
        raise ShapeError(
            f"{name} has shape {list(x.shape)} but must be {layout}; "
            "add a batch axis with x.unsqueeze(0)"
        )
