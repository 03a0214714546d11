r"""One row view for every connection type, so a plasticity rule is written once.

A rule sees a connection as a dense matrix :math:`W \in \mathbb{R}^{n_{out}\times n_{in}}` and
its activity as *rows*: presynaptic ``[T, R, n_in]`` and postsynaptic ``[T, R, n_out]``, where a
row is one place a synapse is used. For a dense layer a row is a sample (``R = B``). For a
convolution a row is one output position of one sample (``R = B L``, ``L = H' W'``): the
presynaptic tensor is unfolded into its patches (im2col),

.. math::

    \mathrm{pre}_{[T, BL,\ C k_h k_w]} = \mathrm{unfold}(x_{[T B, C, H, W]}), \qquad
    W_{[C', C k_h k_w]} = \mathrm{reshape}(W_{[C', C, k_h, k_w]}),

so a conv weight update is the dense update summed over positions, which is exactly how the
shared kernel is used. :class:`DenseView` and :class:`ConvView` do the reshapes; :func:`view_of`
picks one from a layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from deepspike.errors import ConfigError, ShapeError

Pair = tuple[int, int]


def _pair(v: int | Pair) -> Pair:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass(frozen=True)
class DenseView:
    """Rows of a dense connection: ``[T, B, n]`` is already ``[T, R, n]``."""

    def pre_rows(self, x: torch.Tensor) -> torch.Tensor:
        return _time_major(x, 3, "dense presynaptic")

    def post_rows(self, y: torch.Tensor) -> torch.Tensor:
        return _time_major(y, 3, "dense postsynaptic")

    def matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight as ``[n_out, n_in]``."""
        return weight

    def to_weight(self, dw: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """A ``[n_out, n_in]`` update in ``weight``'s own shape."""
        return dw.reshape(weight.shape)


@dataclass(frozen=True)
class ConvView:
    """Rows of a 2-D convolution through unfold (im2col); see the module docstring."""

    kernel_size: int | Pair
    stride: int | Pair = 1
    padding: int | Pair = 0
    dilation: int | Pair = 1

    def pre_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> patches ``[T, B*L, C*kh*kw]``."""
        x = _time_major(x, 5, "conv presynaptic")
        t, b = x.shape[:2]
        cols = F.unfold(
            x.reshape(t * b, *x.shape[2:]),
            _pair(self.kernel_size),
            dilation=_pair(self.dilation),
            padding=_pair(self.padding),
            stride=_pair(self.stride),
        )
        return (
            cols.reshape(t, b, cols.shape[1], cols.shape[2])
            .transpose(2, 3)
            .reshape(t, -1, cols.shape[1])
        )

    def post_rows(self, y: torch.Tensor) -> torch.Tensor:
        """``[T, B, C', H', W']`` -> ``[T, B*L, C']`` in the row order of :meth:`pre_rows`."""
        y = _time_major(y, 5, "conv postsynaptic")
        t, b, c = y.shape[:3]
        return y.reshape(t, b, c, -1).transpose(2, 3).reshape(t, -1, c)

    def matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """The kernel ``[C', C, kh, kw]`` as ``[C', C*kh*kw]`` (unfold's column order)."""
        return weight.reshape(weight.shape[0], -1)

    def to_weight(self, dw: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return dw.reshape(weight.shape)


View = DenseView | ConvView


def view_of(layer: nn.Module) -> View:
    """The row view of a ``Linear`` or ``Conv2d`` layer (deepspike's or torch's)."""
    if isinstance(layer, nn.Linear):
        return DenseView()
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ConfigError("plasticity on grouped convolutions is not supported (groups=1)")
        return ConvView(layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    raise ConfigError(
        f"no plasticity view for {type(layer).__name__}; use a Linear or Conv2d layer"
    )


def _time_major(x: torch.Tensor, dims: int, what: str) -> torch.Tensor:
    if x.dim() != dims:
        layout = "[T, B, n]" if dims == 3 else "[T, B, C, H, W]"
        raise ShapeError(
            f"{what} activity has shape {list(x.shape)} but must be time-major {layout}; "
            "add a time axis with x.unsqueeze(0)"
        )
    return x
