r"""Latency / time-to-first-spike (TTFS) coding.

Every input emits **at most one** spike; brighter inputs spike earlier, and inputs at or below
``threshold`` never spike. Two time maps are offered, both in units of time steps.

``mode='linear'``

.. math::

    t(x) = \tau \, (1 - x), \qquad \tau = T - 1 \text{ when } \texttt{normalize}

so with ``normalize=True`` the brightest input (``x = 1``) spikes at step 0 and ``x -> 0``
at step ``T - 1``.

``mode='log'`` — an RC neuron charged by a constant current ``x`` reaches the threshold
:math:`\theta` when :math:`x (1 - e^{-t/\tau}) = \theta`, i.e.

.. math::

    t_{RC}(x) = \tau \ln\frac{x}{x - \theta}, \qquad x > \theta .

With ``normalize=False`` the spike is at :math:`t_{RC}(x)` (``tau`` in steps). With
``normalize=True`` the times are rescaled so that ``x = 1`` spikes at step 0 and
``x = threshold + epsilon`` at step ``T - 1``:

.. math::

    t(x) = (T - 1)\,\frac{t_{RC}(\max(x, \theta + \epsilon)) - t_{RC}(1)}
                        {t_{RC}(\theta + \epsilon) - t_{RC}(1)} .

(The map is strongly compressive: most inputs spike early. Raise ``epsilon`` to spread them.)

Continuous times are rounded to the nearest step (ties go to the later step); a spike whose
step would be ``>= T`` is dropped. The log map follows snnTorch's ``spikegen.latency`` and the
intensity-to-latency conversion of Kheradpisheh et al. (2018), "STDP-based spiking deep
convolutional neural networks for object recognition", *Neural Networks* 99; TTFS coding in
general is discussed by Thorpe et al. (2001) and Tavanaei et al. (2019).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.encoding._checks import (
    check_choice,
    check_dtype,
    check_positive,
    check_real,
    check_steps,
    check_unit_interval,
)
from deepspike.errors import ConfigError, InputValueError

__all__ = ["LatencyEncoder", "latency", "spike_times", "times_to_spikes"]

_MODES = ("linear", "log")


def times_to_spikes(
    times: torch.Tensor, T: int, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Turn continuous spike times ``[B, ...]`` (in steps, ``inf`` = no spike) into a raster.

    The spike of an input lands at step ``floor(t + 0.5)`` (nearest step, ties later); times
    below ``-0.5`` are an error, times whose step is ``>= T`` and ``inf`` emit no spike.

    Returns:
        spikes ``[T, B, ...]`` with at most one 1.0 per input.
    """
    steps = check_steps(T)
    dtype = check_dtype(dtype)
    if not isinstance(times, torch.Tensor):
        times = torch.as_tensor(times, dtype=torch.float64)
    if torch.isnan(times).any():
        raise InputValueError("times contains NaN; use inf for inputs that never spike")
    if times.numel() and float(times.min()) < -0.5:
        raise InputValueError(
            f"times has a negative value ({float(times.min()):g}); spike times start at step 0"
        )
    idx = torch.floor(times.to(torch.float64) + 0.5)
    valid = torch.isfinite(idx) & (idx <= steps - 1)
    idx = torch.where(valid, idx, torch.zeros_like(idx)).to(torch.long)
    out = torch.zeros((steps, *times.shape), dtype=dtype, device=times.device)
    out.scatter_(0, idx.unsqueeze(0), valid.unsqueeze(0).to(dtype))
    return out


def _resolve_threshold(mode: str, threshold: float | None) -> float:
    if threshold is None:
        return 0.0 if mode == "linear" else 0.01
    thr = check_real(threshold, "threshold")
    if mode == "log" and not 0.0 < thr < 1.0:
        raise ConfigError(
            f"threshold={thr} must be in (0, 1) for mode='log' (the RC neuron's firing "
            "threshold); the default is 0.01"
        )
    if mode == "linear" and not 0.0 <= thr < 1.0:
        raise ConfigError(f"threshold={thr} must be in [0, 1) for mode='linear'")
    return thr


def spike_times(
    x: torch.Tensor,
    T: int,
    mode: str = "linear",
    *,
    tau: float = 1.0,
    threshold: float | None = None,
    normalize: bool = True,
    epsilon: float = 1e-7,
) -> torch.Tensor:
    """Continuous first-spike times (in steps) of the latency code; ``inf`` where no spike.

    See the module docstring for the equations. The raster of :func:`latency` puts each
    finite time at step ``floor(t + 0.5)``; inputs ``<= threshold`` and inputs whose time
    rounds to a step ``>= T`` get ``inf``.

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        T: number of time steps (>= 1).
        mode: ``'linear'`` or ``'log'``.
        tau: time constant in steps (ignored when ``normalize=True``).
        threshold: inputs at or below it never spike; default 0 (linear) / 0.01 (log).
        normalize: stretch the map over the window ``[0, T - 1]``.
        epsilon: in log mode with ``normalize``, ``threshold + epsilon`` maps to ``T - 1``.

    Returns:
        float64 tensor shaped like ``x``.
    """
    steps = check_steps(T)
    check_choice(mode, "mode", _MODES)
    thr = _resolve_threshold(mode, threshold)
    tau_ = check_positive(tau, "tau")
    eps = check_positive(epsilon, "epsilon")
    x = check_unit_interval(x, "x")
    active = x > thr  # compared in x's own precision, so x == threshold never spikes
    x = x.to(torch.float64)
    if mode == "linear":
        scale = float(steps - 1) if normalize else tau_
        t = scale * (1.0 - x)
    else:
        if thr + eps >= 1.0:
            raise ConfigError(f"threshold + epsilon = {thr + eps:g} must be < 1")
        xc = x.clamp(min=thr + eps)
        t_rc = torch.log(xc / (xc - thr))  # in units of tau
        if normalize:
            t_one = math.log(1.0 / (1.0 - thr))
            t_eps = math.log((thr + eps) / eps)
            t = (steps - 1) * (t_rc - t_one) / (t_eps - t_one)
            t = t.clamp(min=0.0, max=float(steps - 1))
        else:
            t = tau_ * t_rc
    inf = torch.full_like(t, math.inf)
    t = torch.where(active & (torch.floor(t + 0.5) <= steps - 1), t, inf)
    return t


def latency(
    x: torch.Tensor,
    T: int,
    mode: str = "linear",
    *,
    tau: float = 1.0,
    threshold: float | None = None,
    normalize: bool = True,
    epsilon: float = 1e-7,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Time-to-first-spike code: one spike per input, brighter -> earlier.

    ``linear``: :math:`t = (T-1)(1-x)` (``normalize=True``) or :math:`\tau (1 - x)`;
    ``log``: :math:`t = \tau \ln(x / (x - \theta))` (RC charging), optionally rescaled to the
    window. Inputs ``<= threshold`` (default 0 for linear, 0.01 for log) emit no spike. See
    :func:`spike_times` and the module docstring for every parameter.

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        T: number of time steps (>= 1).
        dtype: floating dtype of the output.

    Returns:
        spikes ``[T, B, ...]``; ``spikes.sum(0) <= 1`` everywhere.

    Raises:
        InputValueError: NaN/inf or values outside ``[0, 1]``.
        ConfigError: ``T`` < 1, an unknown ``mode``, or a bad ``tau``/``threshold``.
    """
    dtype = check_dtype(dtype)
    t = spike_times(x, T, mode, tau=tau, threshold=threshold, normalize=normalize, epsilon=epsilon)
    return times_to_spikes(t, T, dtype=dtype)


class LatencyEncoder(nn.Module):
    """Module form of :func:`latency`: ``LatencyEncoder(T, mode='log')(x) -> [T, B, ...]``."""

    def __init__(
        self,
        T: int,
        mode: str = "linear",
        *,
        tau: float = 1.0,
        threshold: float | None = None,
        normalize: bool = True,
        epsilon: float = 1e-7,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.T = check_steps(T)
        self.mode = check_choice(mode, "mode", _MODES)
        self.tau = check_positive(tau, "tau")
        self.threshold = _resolve_threshold(mode, threshold)
        self.normalize = bool(normalize)
        self.epsilon = check_positive(epsilon, "epsilon")
        self.dtype = check_dtype(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return latency(
            x,
            self.T,
            self.mode,
            tau=self.tau,
            threshold=self.threshold,
            normalize=self.normalize,
            epsilon=self.epsilon,
            dtype=self.dtype,
        )

    def extra_repr(self) -> str:
        return (
            f"T={self.T}, mode={self.mode!r}, threshold={self.threshold}, "
            f"normalize={self.normalize}"
        )
