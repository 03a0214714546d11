r"""Gaussian population coding (Bohte, Kok & La Poutré 2002).

A scalar :math:`x \in [x_{\min}, x_{\max}]` is represented by :math:`n` neurons with Gaussian
receptive fields of centres :math:`\mu_i` and common width :math:`\sigma`:

.. math::

    a_i(x) = \exp\!\left(-\frac{(x - \mu_i)^2}{2\sigma^2}\right) \in (0, 1].

Centres (``layout``):

* ``'uniform'``: :math:`\mu_i = x_{\min} + i\,\Delta`, :math:`\Delta = (x_{\max}-x_{\min})/(n-1)`,
  :math:`i = 0..n-1` (the end neurons sit on the range limits);
* ``'bohte'``: :math:`\mu_i = x_{\min} + \frac{2i - 3}{2}\Delta`,
  :math:`\Delta = (x_{\max}-x_{\min})/(n-2)`, :math:`i = 1..n` (Bohte et al. 2002, eq. 8; the
  outer centres lie half a spacing outside the range).

The default width is :math:`\sigma = \Delta / \beta` with :math:`\beta = 1.5` (Bohte et al.).
The activations become spikes either by rate (``mode='rate'``:
:math:`s_t \sim \operatorname{Bernoulli}(a_i \, p_{\max})`) or by latency
(``mode='latency'``: one spike at :math:`t_i = (T-1)(1 - a_i)`, none if
:math:`a_i \le` ``threshold``). Since :math:`a_i` decreases with :math:`|x - \mu_i|`, the
neuron whose centre is nearest :math:`x` fires most (rate) or first (latency).

Reference: Bohte, Kok & La Poutré (2002), "Error-backpropagation in temporally encoded
networks of spiking neurons", *Neurocomputing* 48.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.encoding._checks import (
    as_tensor,
    check_choice,
    check_dtype,
    check_positive,
    check_positive_int,
    check_range,
    check_real,
    check_steps,
)
from deepspike.encoding.latency import latency
from deepspike.encoding.rate import rate
from deepspike.errors import ConfigError

__all__ = [
    "PopulationEncoder",
    "population",
    "population_centers",
    "population_response",
]

_LAYOUTS = ("uniform", "bohte")
_MODES = ("rate", "latency")
BETA = 1.5


def _check_bounds(x_min: float, x_max: float) -> tuple[float, float]:
    lo = check_real(x_min, "x_min")
    hi = check_real(x_max, "x_max")
    if not hi > lo:
        raise ConfigError(f"x_max={hi} must be greater than x_min={lo}")
    return lo, hi


def population_centers(
    n_neurons: int,
    x_min: float = 0.0,
    x_max: float = 1.0,
    layout: str = "uniform",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Receptive-field centres ``[n_neurons]`` (see the module docstring for the layouts).

    Raises:
        ConfigError: ``n_neurons`` < 2 (< 3 for ``'bohte'``), ``x_max <= x_min`` or an
            unknown ``layout``.
    """
    check_choice(layout, "layout", _LAYOUTS)
    n = check_positive_int(n_neurons, "n_neurons", minimum=2 if layout == "uniform" else 3)
    lo, hi = _check_bounds(x_min, x_max)
    i = torch.arange(n, dtype=torch.float64)
    if layout == "uniform":
        centers = lo + i * (hi - lo) / (n - 1)
    else:
        centers = lo + (2 * (i + 1) - 3) / 2 * (hi - lo) / (n - 2)
    return centers.to(dtype=dtype, device=device)


def _default_sigma(n: int, lo: float, hi: float, layout: str) -> float:
    spacing = (hi - lo) / (n - 1 if layout == "uniform" else n - 2)
    return spacing / BETA


def population_response(
    x: torch.Tensor,
    n_neurons: int,
    x_min: float = 0.0,
    x_max: float = 1.0,
    sigma: float | None = None,
    *,
    layout: str = "uniform",
) -> torch.Tensor:
    """Gaussian receptive-field activations ``a_i(x)`` in ``(0, 1]``, shape ``[B, ..., n]``.

    Args:
        x: values ``[B, ...]`` in ``[x_min, x_max]``.
        n_neurons: number of receptive fields per value.
        x_min, x_max: the encoded range.
        sigma: field width; default ``spacing / 1.5`` (Bohte et al. 2002).
        layout: ``'uniform'`` or ``'bohte'`` centre placement.
    """
    x = as_tensor(x, "x")
    centers = population_centers(n_neurons, x_min, x_max, layout, dtype=x.dtype, device=x.device)
    lo, hi = _check_bounds(x_min, x_max)
    check_range(x, lo, hi, "x")
    n = centers.numel()
    s = _default_sigma(n, lo, hi, layout) if sigma is None else check_positive(sigma, "sigma")
    d = x.unsqueeze(-1) - centers
    return torch.exp(-(d * d) / (2.0 * s * s))


def population(
    x: torch.Tensor,
    n_neurons: int,
    T: int,
    x_min: float = 0.0,
    x_max: float = 1.0,
    sigma: float | None = None,
    mode: str = "rate",
    *,
    layout: str = "uniform",
    max_rate: float = 1.0,
    threshold: float = 0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gaussian population code of scalar values (Bohte et al. 2002).

    Each value becomes ``n_neurons`` activations ``a_i = exp(-(x - mu_i)^2 / (2 sigma^2))``
    (:func:`population_response`), encoded by rate (Bernoulli with ``p = a_i * max_rate`` per
    step) or by latency (one spike at ``(T - 1)(1 - a_i)``; none where ``a_i <= threshold``;
    Bohte et al. silenced weakly driven neurons with a threshold around 0.1).

    Args:
        x: values ``[B, ...]`` in ``[x_min, x_max]``.
        n_neurons: receptive fields per value (>= 2; >= 3 for ``layout='bohte'``).
        T: number of time steps.
        x_min, x_max: encoded range.
        sigma: field width (default ``spacing / 1.5``).
        mode: ``'rate'`` or ``'latency'``.
        layout: ``'uniform'`` or ``'bohte'`` centres.
        max_rate: rate mode: spike probability per step at ``a_i = 1``.
        threshold: latency mode: activations at or below it emit no spike.
        generator: rate mode: optional :class:`torch.Generator`.
        dtype: floating dtype of the output.

    Returns:
        spikes ``[T, B, ..., n_neurons]``.

    Raises:
        InputValueError: NaN/inf or values outside ``[x_min, x_max]``.
        ConfigError: bad ``T``, ``n_neurons``, range, ``sigma`` or ``mode``.
    """
    steps = check_steps(T)
    check_choice(mode, "mode", _MODES)
    dtype = check_dtype(dtype)
    a = population_response(x, n_neurons, x_min, x_max, sigma, layout=layout).clamp(0.0, 1.0)
    if mode == "rate":
        return rate(a, steps, max_rate, generator=generator, dtype=dtype)
    return latency(a, steps, "linear", threshold=threshold, normalize=True, dtype=dtype)


class PopulationEncoder(nn.Module):
    """Module form of :func:`population`; forward ``(x, generator=None) -> [T, B, ..., n]``."""

    def __init__(
        self,
        n_neurons: int,
        T: int,
        x_min: float = 0.0,
        x_max: float = 1.0,
        sigma: float | None = None,
        mode: str = "rate",
        *,
        layout: str = "uniform",
        max_rate: float = 1.0,
        threshold: float = 0.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.T = check_steps(T)
        self.mode = check_choice(mode, "mode", _MODES)
        self.layout = check_choice(layout, "layout", _LAYOUTS)
        centers = population_centers(n_neurons, x_min, x_max, layout, dtype=torch.float64)
        self.n_neurons = centers.numel()
        self.x_min, self.x_max = _check_bounds(x_min, x_max)
        self.sigma = None if sigma is None else check_positive(sigma, "sigma")
        self.max_rate = max_rate
        self.threshold = threshold
        self.dtype = check_dtype(dtype)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return population(
            x,
            self.n_neurons,
            self.T,
            self.x_min,
            self.x_max,
            self.sigma,
            self.mode,
            layout=self.layout,
            max_rate=self.max_rate,
            threshold=self.threshold,
            generator=generator,
            dtype=self.dtype,
        )

    def extra_repr(self) -> str:
        return (
            f"n_neurons={self.n_neurons}, T={self.T}, range=[{self.x_min}, {self.x_max}], "
            f"mode={self.mode!r}, layout={self.layout!r}"
        )
