r"""Surrogate derivatives for the spike non-linearity.

The forward pass of a spiking neuron emits :math:`s = H(v - \vartheta)`, whose derivative is
zero almost everywhere. Surrogate-gradient training (Neftci, Mostafa & Zenke 2019) keeps the
Heaviside step in the forward pass and replaces :math:`H'(x)` in the backward pass by the
derivative :math:`\sigma'(x)` of a smooth primitive :math:`\sigma`. Each surrogate here is a
frozen dataclass with

* ``primitive(x)``: the smooth function :math:`\sigma(x)` whose slope stands in for the step;
* ``derivative(x)``: its exact derivative :math:`\sigma'(x)`, used in the backward pass.

``x`` is the distance to threshold, :math:`x = v - \vartheta`. Surrogates are plain values, chosen
per layer: ``LIF(surrogate=ArcTan(alpha=2.0))``. There is no global registry.

References: fast sigmoid / SuperSpike (Zenke & Ganguli 2018), arctan (Fang et al. 2021),
triangle (Esser et al. 2016; Bellec et al. 2018), straight-through (Bengio et al. 2013).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class Surrogate:
    """Base class: a smooth stand-in for the Heaviside step."""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Heaviside forward, ``derivative`` backward."""
        return _SpikeFunction.apply(x, self)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    r""":math:`\sigma(x) = \frac{x}{1 + \alpha|x|}`, :math:`\sigma'(x) = \frac{1}{(1+\alpha|x|)^2}`.

    The SuperSpike surrogate of Zenke & Ganguli 2018 has the same shape; see :class:`SuperSpike`.
    """

    alpha: float = 10.0

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1.0 + self.alpha * x.abs())

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1.0 + self.alpha * x.abs()) ** 2

    def inverse_square_form(self) -> tuple[float, float]:
        r"""``(c, a)`` with :math:`\sigma'(x) = c/(1 + a|x|)^2`, for kernels that inline it."""
        return 1.0, self.alpha


@dataclass(frozen=True)
class SuperSpike(Surrogate):
    r"""SuperSpike (Zenke & Ganguli 2018): :math:`\sigma'(x) = \beta / (1 + \beta|x|)^2`.

    Primitive :math:`\sigma(x) = \frac{\beta x}{1 + \beta |x|}` (normalised so that
    :math:`\sigma'(0) = \beta`, as in the paper's :math:`h = 1/(\beta|x|+1)^2` scaled by
    :math:`\beta`).
    """

    beta: float = 10.0

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return self.beta * x / (1.0 + self.beta * x.abs())

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.beta / (1.0 + self.beta * x.abs()) ** 2

    def inverse_square_form(self) -> tuple[float, float]:
        r"""``(c, a)`` with :math:`\sigma'(x) = c/(1 + a|x|)^2`, for kernels that inline it."""
        return self.beta, self.beta


@dataclass(frozen=True)
class ArcTan(Surrogate):
    r""":math:`\sigma(x) = \frac{1}{\pi}\arctan(\frac{\pi}{2}\alpha x) + \frac12`,
    :math:`\sigma'(x) = \frac{\alpha / 2}{1 + (\frac{\pi}{2}\alpha x)^2}` (Fang et al. 2021)."""

    alpha: float = 2.0

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(0.5 * math.pi * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.alpha / (1.0 + (0.5 * math.pi * self.alpha * x) ** 2)


@dataclass(frozen=True)
class Triangle(Surrogate):
    r"""Piecewise-linear surrogate :math:`\sigma'(x) = \gamma \max(0, 1 - |x|/w)` (Bellec 2018).

    Its primitive is the piecewise quadratic
    :math:`\sigma(x) = \gamma\,(x - \operatorname{sign}(x)\,x^2/(2w))` for :math:`|x| < w`,
    and :math:`\pm\gamma w/2` outside.
    """

    width: float = 1.0
    gamma: float = 1.0

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.clamp(-self.width, self.width)
        return self.gamma * (xc - xc.sign() * xc * xc / (2.0 * self.width))

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * (1.0 - x.abs() / self.width).clamp(min=0.0)


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    r"""Straight-through estimator (Bengio et al. 2013): :math:`\sigma(x) = x`,
    :math:`\sigma'(x) = 1`."""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside step with a surrogate derivative in the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


def heaviside(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Spike non-linearity :math:`H(x)` (with :math:`H(0) = 1`) and ``surrogate``'s derivative."""
    return _SpikeFunction.apply(x, surrogate)


DEFAULT_SURROGATE = FastSigmoid()
