r"""Retina- and V1-like filter banks that precede latency coding of images.

**Difference of Gaussians (DoG), ON/OFF centre cells** — Kheradpisheh et al. (2018),
"STDP-based spiking deep convolutional neural networks for object recognition",
*Neural Networks* 99 (7x7 kernels, :math:`\sigma_c = 1`, :math:`\sigma_s = 2`):

.. math::

    D(u, v) = \frac{e^{-r^2 / 2\sigma_c^2}}{2\pi\sigma_c^2}
            - \frac{e^{-r^2 / 2\sigma_s^2}}{2\pi\sigma_s^2}, \qquad r^2 = u^2 + v^2,

then balanced so that the positive lobe sums to +1 and the negative lobe to -1,
:math:`K = D^+ / \sum D^+ - D^- / \sum D^-`, hence :math:`\sum K = 0` exactly (up to float
rounding) and a uniform image gives zero response. For images in ``[0, 1]`` the response
:math:`R = I \ast K` lies in ``[-1, 1]``; the ON channel is :math:`\max(R, 0)` and the OFF
channel :math:`\max(-R, 0)`, both in ``[0, 1]`` and ready for :func:`latency`.

**Gabor filters, orientation-selective simple cells** — Masquelier & Thorpe (2007),
"Unsupervised learning of visual features through spike timing dependent plasticity",
*PLoS Comput. Biol.* 3(2), using the S1 parameters of Serre et al. (2007)
(7x7, :math:`\lambda = 3.5`, :math:`\sigma = 2.8`, :math:`\gamma = 0.3`):

.. math::

    G_\theta(u, v) = \exp\!\left(-\frac{X^2 + \gamma^2 Y^2}{2\sigma^2}\right)
                     \cos\!\left(\frac{2\pi X}{\lambda} + \varphi\right),
    \quad X = u\cos\theta + v\sin\theta,\; Y = -u\sin\theta + v\cos\theta,

with :math:`u` the column offset (rightwards) and :math:`v` the row offset (downwards). Each
kernel is made zero-mean and scaled to unit L2 norm. :math:`\theta` is the direction of the
carrier wave, i.e. the normal of the preferred stripes: ``theta = 0`` prefers **vertical**
stripes (intensity varying along x), ``theta = pi/2`` horizontal ones. The default angles
are :math:`\theta_k = k\pi/n`; Masquelier & Thorpe used :math:`\pi/8 + k\pi/4`, which can be
passed as a sequence.

All convolutions are cross-correlations (as :func:`torch.nn.functional.conv2d`) with 'same'
output size; borders are padded with ``padding_mode`` (default ``'replicate'``, so a uniform
image gives zero response everywhere, borders included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.encoding._checks import (
    as_tensor,
    check_choice,
    check_dtype,
    check_positive,
    check_positive_int,
    check_real,
)
from deepspike.errors import ConfigError, ShapeError

__all__ = [
    "DoGFilter",
    "GaborFilter",
    "dog_filter",
    "dog_kernel",
    "gabor_filter",
    "gabor_kernels",
]

_PADDING = ("replicate", "reflect", "zeros", "circular")
_RECTIFY = ("abs", "relu", "none")


def _check_size(size: int) -> int:
    k = check_positive_int(size, "size")
    if k % 2 == 0:
        raise ConfigError(f"size={k} must be odd so that 'same' padding is symmetric, e.g. 7")
    return k


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    v, u = torch.meshgrid(r, r, indexing="ij")  # v: row offset (down), u: column offset (right)
    return u, v


def dog_kernel(
    size: int = 7,
    sigma_center: float = 1.0,
    sigma_surround: float = 2.0,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """ON-centre difference-of-Gaussians kernel ``[size, size]`` with zero sum.

    The positive lobe sums to exactly 1 and the negative lobe to exactly -1 (see the module
    docstring); negate it for an OFF-centre kernel.

    Raises:
        ConfigError: even or non-positive ``size``, non-positive sigmas, or
            ``sigma_center >= sigma_surround``.
    """
    k = _check_size(size)
    s_c = check_positive(sigma_center, "sigma_center")
    s_s = check_positive(sigma_surround, "sigma_surround")
    dtype = check_dtype(dtype)
    if s_c >= s_s:
        raise ConfigError(
            f"sigma_center={s_c} must be smaller than sigma_surround={s_s} (e.g. 1 and 2)"
        )
    u, v = _grid(k)
    r2 = u * u + v * v
    d = torch.exp(-r2 / (2 * s_c**2)) / (2 * math.pi * s_c**2) - torch.exp(-r2 / (2 * s_s**2)) / (
        2 * math.pi * s_s**2
    )
    pos, neg = d.clamp(min=0), (-d).clamp(min=0)
    if float(pos.sum()) == 0.0 or float(neg.sum()) == 0.0:
        raise ConfigError(
            f"size={k} is too small for sigmas ({s_c}, {s_s}): the kernel has no "
            "surround; use a larger size, e.g. size >= 2 * sigma_surround + 1"
        )
    return (pos / pos.sum() - neg / neg.sum()).to(dtype)


def peak_dog_kernel(
    size: int,
    sigma_1: float,
    sigma_2: float,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Difference-of-Gaussians kernel ``[size, size]`` shifted to zero mean and scaled to a peak
    of 1, as Mozafari et al. (2019) build theirs (SpykeTorch's ``DoGKernel``):
    :math:`D = g_{\sigma_1} - g_{\sigma_2}` with :math:`g_\sigma(r) = e^{-r^2/2\sigma^2} /
    2\pi\sigma^2`, then :math:`K = (D - \bar D) / \max(D - \bar D)`.

    ``sigma_1 < sigma_2`` gives an ON-centre kernel (peak 1 at the centre). ``sigma_1 >
    sigma_2`` gives the OFF-centre kernel, whose peak is on the surround ring, so its negative
    centre is several times larger than 1: unlike :func:`dog_kernel`, the ON and OFF
    responses of one scale differ in scale.

    Raises:
        ConfigError: even or non-positive ``size``, non-positive or equal sigmas.
    """
    k = _check_size(size)
    s_1 = check_positive(sigma_1, "sigma_1")
    s_2 = check_positive(sigma_2, "sigma_2")
    if s_1 == s_2:
        raise ConfigError(f"sigma_1 and sigma_2 are both {s_1}: a DoG needs two widths")
    u, v = _grid(k)
    r2 = u * u + v * v
    d = torch.exp(-r2 / (2 * s_1**2)) / (2 * math.pi * s_1**2) - torch.exp(-r2 / (2 * s_2**2)) / (
        2 * math.pi * s_2**2
    )
    d = d - d.mean()
    return (d / d.max()).to(check_dtype(dtype))


def _check_images(images: torch.Tensor) -> torch.Tensor:
    x = as_tensor(images, "images")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ShapeError(
            f"images has shape {list(x.shape)} but must be [B, H, W] or [B, 1, H, W]; "
            "convert colour images to grey first, e.g. x.mean(1, keepdim=True)"
        )
    return x


def _conv_same(x: torch.Tensor, weight: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """Correlate ``x`` ``[B, 1, H, W]`` with ``weight`` ``[C, 1, k, k]`` -> ``[B, C, H, W]``."""
    check_choice(padding_mode, "padding_mode", _PADDING)
    p = weight.shape[-1] // 2
    H, W = x.shape[-2:]
    if padding_mode == "reflect" and (p >= H or p >= W):
        raise ConfigError(
            f"padding_mode='reflect' needs images larger than {p} pixels per side "
            f"(got {H}x{W}); use padding_mode='replicate'"
        )
    if padding_mode == "circular" and (p > H or p > W):
        raise ConfigError(
            f"padding_mode='circular' needs images of at least {p} pixels per side "
            f"(got {H}x{W}); use padding_mode='replicate'"
        )
    if padding_mode == "zeros":
        xp = F.pad(x, (p, p, p, p), mode="constant", value=0.0)
    else:
        xp = F.pad(x, (p, p, p, p), mode=padding_mode)
    return F.conv2d(xp, weight.to(dtype=x.dtype, device=x.device))


def dog_filter(
    images: torch.Tensor,
    size: int = 7,
    sigma_center: float = 1.0,
    sigma_surround: float = 2.0,
    *,
    padding_mode: str = "replicate",
) -> torch.Tensor:
    """ON/OFF centre-surround responses of grey images (Kheradpisheh et al. 2018).

    Args:
        images: ``[B, H, W]`` or ``[B, 1, H, W]``, any finite values (``[0, 1]`` keeps the
            outputs in ``[0, 1]``).
        size, sigma_center, sigma_surround: see :func:`dog_kernel`.
        padding_mode: ``'replicate'`` (default), ``'reflect'``, ``'zeros'`` or ``'circular'``.

    Returns:
        ``[B, 2, H, W]``: channel 0 = ON ``relu(I * K)``, channel 1 = OFF ``relu(-(I * K))``.
    """
    x = _check_images(images)
    k = dog_kernel(size, sigma_center, sigma_surround, dtype=torch.float64)
    r = _conv_same(x, k[None, None], padding_mode)
    return torch.cat([r.clamp(min=0), (-r).clamp(min=0)], dim=1)


def _orientations(orientations: int | Sequence[float]) -> list[float]:
    if isinstance(orientations, int) and not isinstance(orientations, bool):
        n = check_positive_int(orientations, "orientations")
        return [k * math.pi / n for k in range(n)]
    if isinstance(orientations, Sequence) and not isinstance(orientations, str):
        if len(orientations) == 0:
            raise ConfigError("orientations is empty; give a count or at least one angle")
        return [check_real(t, "orientation angle") for t in orientations]
    raise ConfigError(
        f"orientations={orientations!r} must be a count (e.g. 4) or a sequence of angles in radians"
    )


def gabor_kernels(
    size: int = 7,
    orientations: int | Sequence[float] = 4,
    wavelength: float = 3.5,
    sigma: float = 2.8,
    gamma: float = 0.3,
    *,
    phase: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Zero-mean, unit-norm Gabor kernels ``[n_orientations, size, size]``.

    Args:
        size: odd kernel side.
        orientations: a count ``n`` (angles ``k * pi / n``) or explicit angles in radians;
            ``0`` prefers vertical stripes (see the module docstring).
        wavelength: carrier wavelength ``lambda`` in pixels.
        sigma: Gaussian envelope width in pixels.
        gamma: spatial aspect ratio (envelope elongation along the stripes).
        phase: carrier phase ``phi`` (0 = even/symmetric, pi/2 = odd/edge detector).
        dtype: floating dtype.
    """
    k = _check_size(size)
    thetas = _orientations(orientations)
    lam = check_positive(wavelength, "wavelength")
    sig = check_positive(sigma, "sigma")
    gam = check_positive(gamma, "gamma")
    phi = check_real(phase, "phase")
    dtype = check_dtype(dtype)
    u, v = _grid(k)
    out = []
    for theta in thetas:
        X = u * math.cos(theta) + v * math.sin(theta)
        Y = -u * math.sin(theta) + v * math.cos(theta)
        g = torch.exp(-(X * X + gam**2 * Y * Y) / (2 * sig**2)) * torch.cos(
            2 * math.pi * X / lam + phi
        )
        g = g - g.mean()
        norm = torch.linalg.vector_norm(g)
        if float(norm) < 1e-12:
            raise ConfigError(
                f"the Gabor kernel at theta={theta:g} is all zero after removing its mean; "
                "use a larger size or a shorter wavelength"
            )
        out.append(g / norm)
    return torch.stack(out).to(dtype)


def gabor_filter(
    images: torch.Tensor,
    size: int = 7,
    orientations: int | Sequence[float] = 4,
    wavelength: float = 3.5,
    sigma: float = 2.8,
    gamma: float = 0.3,
    *,
    phase: float = 0.0,
    rectify: str = "abs",
    padding_mode: str = "replicate",
) -> torch.Tensor:
    """Oriented Gabor responses of grey images (S1 layer of Masquelier & Thorpe 2007).

    Args:
        images: ``[B, H, W]`` or ``[B, 1, H, W]``.
        size, orientations, wavelength, sigma, gamma, phase: see :func:`gabor_kernels`.
        rectify: ``'abs'`` (default, as in HMAX S1), ``'relu'`` or ``'none'``.
        padding_mode: ``'replicate'`` (default), ``'reflect'``, ``'zeros'`` or ``'circular'``.

    Returns:
        ``[B, n_orientations, H, W]``.
    """
    x = _check_images(images)
    check_choice(rectify, "rectify", _RECTIFY)
    kernels = gabor_kernels(
        size, orientations, wavelength, sigma, gamma, phase=phase, dtype=torch.float64
    )
    r = _conv_same(x, kernels.unsqueeze(1), padding_mode)
    if rectify == "abs":
        return r.abs()
    if rectify == "relu":
        return r.clamp(min=0)
    return r


class DoGFilter(nn.Module):
    """Module form of :func:`dog_filter`; the kernel is a (non-trainable) buffer."""

    def __init__(
        self,
        size: int = 7,
        sigma_center: float = 1.0,
        sigma_surround: float = 2.0,
        *,
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        self.padding_mode = check_choice(padding_mode, "padding_mode", _PADDING)
        self.register_buffer(
            "kernel", dog_kernel(size, sigma_center, sigma_surround, dtype=torch.float64)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        r = _conv_same(x, self.kernel[None, None], self.padding_mode)
        return torch.cat([r.clamp(min=0), (-r).clamp(min=0)], dim=1)


class GaborFilter(nn.Module):
    """Module form of :func:`gabor_filter`; the kernels are a (non-trainable) buffer."""

    def __init__(
        self,
        size: int = 7,
        orientations: int | Sequence[float] = 4,
        wavelength: float = 3.5,
        sigma: float = 2.8,
        gamma: float = 0.3,
        *,
        phase: float = 0.0,
        rectify: str = "abs",
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        self.rectify = check_choice(rectify, "rectify", _RECTIFY)
        self.padding_mode = check_choice(padding_mode, "padding_mode", _PADDING)
        self.register_buffer(
            "kernels",
            gabor_kernels(
                size, orientations, wavelength, sigma, gamma, phase=phase, dtype=torch.float64
            ),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        r = _conv_same(x, self.kernels.unsqueeze(1), self.padding_mode)
        if self.rectify == "abs":
            return r.abs()
        if self.rectify == "relu":
            return r.clamp(min=0)
        return r
