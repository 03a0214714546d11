r"""Rate (Bernoulli / Poisson) coding.

Each input intensity :math:`x \in [0, 1]` drives an independent Bernoulli process: at every
time step :math:`t = 0, \dots, T-1`

.. math::

    s_t \sim \operatorname{Bernoulli}(x \, p_{\max}),

so the expected spike count is :math:`T x p_{\max}` and the spike train is the discrete-time
approximation of a Poisson process of rate :math:`\lambda = x \, r_{\max}` with
:math:`p_{\max} = r_{\max} \Delta t` (valid while :math:`r_{\max} \Delta t \le 1`).

Rate coding is the input code of most converted and STDP-trained networks, e.g.
Diehl & Cook (2015), "Unsupervised learning of digit recognition using spike-timing-dependent
plasticity", *Front. Comput. Neurosci.* 9:99 (pixel intensity / 4 -> at most 63.75 Hz), and
is reviewed in Tavanaei et al. (2019), "Deep learning in spiking neural networks",
*Neural Networks* 111.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.encoding._checks import (
    check_dtype,
    check_positive,
    check_steps,
    check_unit_interval,
)
from deepspike.errors import ConfigError

__all__ = ["RateEncoder", "poisson_rate_hz", "rate"]


def _max_probability(max_rate: float | None, rate_hz: float | None, dt_ms: float | None) -> float:
    if rate_hz is None and dt_ms is None:
        p = 1.0 if max_rate is None else check_positive(max_rate, "max_rate")
        if p > 1.0:
            raise ConfigError(
                f"max_rate={p} is a spike probability per step and must be in (0, 1]; "
                "for a rate in Hz pass rate_hz=... and dt_ms=... instead"
            )
        return p
    if max_rate is not None:
        raise ConfigError(
            "give either max_rate (probability per step) or rate_hz with dt_ms, not both"
        )
    if rate_hz is None or dt_ms is None:
        raise ConfigError("rate_hz and dt_ms must be given together, e.g. rate_hz=100, dt_ms=1")
    hz = check_positive(rate_hz, "rate_hz")
    dt = check_positive(dt_ms, "dt_ms")
    p = hz * dt / 1000.0
    if p > 1.0:
        raise ConfigError(
            f"rate_hz * dt_ms / 1000 = {p:g} > 1: at most one spike fits in a step; "
            f"lower dt_ms to <= {1000.0 / hz:g} or lower rate_hz"
        )
    return p


def rate(
    x: torch.Tensor,
    T: int,
    max_rate: float | None = None,
    *,
    rate_hz: float | None = None,
    dt_ms: float | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Bernoulli rate code: ``s[t] ~ Bernoulli(x * p_max)`` independently for every step.

    The peak spike probability per step is either ``p_max = max_rate`` (default 1.0) or
    ``p_max = rate_hz * dt_ms / 1000`` (a Poisson process of rate :math:`x \cdot` ``rate_hz``
    sampled every ``dt_ms`` milliseconds, Diehl & Cook 2015).

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        T: number of time steps (>= 1).
        max_rate: spike probability per step for ``x = 1``, in ``(0, 1]``.
        rate_hz: peak firing rate in Hz (use together with ``dt_ms``, instead of ``max_rate``).
        dt_ms: simulation step in milliseconds (with ``rate_hz``).
        generator: optional :class:`torch.Generator` (on ``x``'s device) for reproducibility.
        dtype: floating dtype of the output.

    Returns:
        spikes ``[T, B, ...]`` of 0.0/1.0 with ``E[spikes.mean(0)] = x * p_max``.

    Raises:
        InputValueError: ``x`` holds NaN/inf or values outside ``[0, 1]``.
        ConfigError: ``T`` < 1, a probability above 1, or inconsistent rate arguments.
    """
    steps = check_steps(T)
    dtype = check_dtype(dtype)
    p_max = _max_probability(max_rate, rate_hz, dt_ms)
    x = check_unit_interval(x, "x")
    p = x * p_max
    u = torch.rand((steps, *x.shape), generator=generator, device=x.device, dtype=p.dtype)
    return (u < p).to(dtype)


def poisson_rate_hz(
    x: torch.Tensor,
    T: int,
    max_hz: float = 63.75,
    dt_ms: float = 1.0,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Poisson spike trains of rate ``x * max_hz`` sampled every ``dt_ms`` milliseconds.

    Equivalent to ``rate(x, T, rate_hz=max_hz, dt_ms=dt_ms)``: per step
    :math:`s_t \sim \operatorname{Bernoulli}(x \cdot \mathrm{max\_hz} \cdot \Delta t)`.
    The default 63.75 Hz is the maximum rate of Diehl & Cook (2015) (pixel value / 4).

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        T: number of time steps (>= 1); the window lasts ``T * dt_ms`` ms.
        max_hz: firing rate in Hz for ``x = 1``.
        dt_ms: step length in milliseconds (``max_hz * dt_ms / 1000`` must be <= 1).
        generator: optional :class:`torch.Generator` for reproducibility.
        dtype: floating dtype of the output.

    Returns:
        spikes ``[T, B, ...]`` of 0.0/1.0.
    """
    return rate(x, T, rate_hz=max_hz, dt_ms=dt_ms, generator=generator, dtype=dtype)


class RateEncoder(nn.Module):
    """Module form of :func:`rate`: ``RateEncoder(T)(x) -> [T, B, ...]``.

    The parameters mirror :func:`rate`; pass ``generator=`` to :meth:`forward` for determinism.
    """

    def __init__(
        self,
        T: int,
        max_rate: float | None = None,
        *,
        rate_hz: float | None = None,
        dt_ms: float | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.T = check_steps(T)
        _max_probability(max_rate, rate_hz, dt_ms)  # validate early
        self.max_rate = max_rate
        self.rate_hz = rate_hz
        self.dt_ms = dt_ms
        self.dtype = check_dtype(dtype)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return rate(
            x,
            self.T,
            self.max_rate,
            rate_hz=self.rate_hz,
            dt_ms=self.dt_ms,
            generator=generator,
            dtype=self.dtype,
        )

    def extra_repr(self) -> str:
        if self.rate_hz is not None:
            return f"T={self.T}, rate_hz={self.rate_hz}, dt_ms={self.dt_ms}"
        return f"T={self.T}, max_rate={1.0 if self.max_rate is None else self.max_rate}"
