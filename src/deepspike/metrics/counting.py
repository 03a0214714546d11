r"""Pure counting functions for synaptic operations, following NeuroBench.

Definitions (J. Yik et al., "The NeuroBench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications, 2025; arXiv:2304.04640):

* an **input event** is a non-zero element of a synaptic layer's input;
* its **fan-out** is the number of synapses it drives: ``out_features`` for a dense layer, the
  number of (output position, output channel) pairs it reaches for a convolution;
* an event of a **binary** input (every value in ``{0, 1}``; also ``{-1, 0, 1}``, such as the
  onsets and offsets of rectangular EPSPs, where an event adds or subtracts the weight) costs
  one *accumulate* (AC) per synapse of its fan-out; an event of any other input costs one
  *multiply-accumulate* (MAC) per synapse. Synaptic operations = ACs + MACs =
  :math:`\sum_{\text{events}}` fan-out;
* the **equivalent ANN** does every multiply of every layer once per inference (no time axis,
  no sparsity): ``in * out`` for a dense layer, ``H' W' C' (C/g) k_h k_w`` for a convolution.

Every synapse of the layer counts in the fan-out, zero weights included (NeuroBench's "dense"
counting); biases are not counted. All counts here are totals over whatever tensor is given
(every time step and sample in it); :mod:`deepspike.metrics.meter` divides by the samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from deepspike.errors import ConfigError, ShapeError


def is_binary(x: torch.Tensor) -> bool:
    """``True`` when every element of ``x`` is 0 or 1 (a spike tensor)."""
    if x.dtype == torch.bool:
        return True
    return bool(((x == 0) | (x == 1)).all())


def is_accumulate_only(x: torch.Tensor) -> bool:
    """``True`` when every element of ``x`` is -1, 0 or 1: each event adds or subtracts a
    weight, no multiply (spikes, or EPSP onsets and offsets)."""
    if x.dtype == torch.bool:
        return True
    return bool((x.abs() == 1).logical_or_(x == 0).all())


def count_events(x: torch.Tensor) -> int:
    """Number of non-zero elements (input events) of ``x``."""
    return int(torch.count_nonzero(x))


def split_ops(n_ops: int, binary: bool) -> tuple[int, int]:
    """Return ``(acs, macs)``: ``n_ops`` synaptic operations are ACs if the input was binary,
    else MACs."""
    return (n_ops, 0) if binary else (0, n_ops)


def dense_synops(x: torch.Tensor, out_features: int) -> int:
    """Synaptic operations of a dense layer: input events times the fan-out ``out_features``."""
    return count_events(x) * out_features


def dense_ann_macs(in_features: int, out_features: int) -> int:
    """MACs of one dense layer in the equivalent ANN, per sample and inference: ``in * out``."""
    return in_features * out_features


def conv2d_ann_macs(
    out_hw: Sequence[int],
    out_channels: int,
    in_channels: int,
    kernel_size: Sequence[int],
    groups: int = 1,
) -> int:
    """MACs of one 2-D convolution in the equivalent ANN, per sample and inference:
    ``H' * W' * C_out * (C_in / groups) * k_h * k_w``."""
    h, w = out_hw
    kh, kw = kernel_size
    return h * w * out_channels * (in_channels // groups) * kh * kw


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def explicit_padding(
    padding: str | int | Sequence[int], kernel_size: Sequence[int], dilation: Sequence[int]
) -> tuple[int, int, int, int]:
    """Padding as ``(top, bottom, left, right)``; ``'same'`` puts the odd pixel at the end, as
    torch does; ``'valid'`` is no padding."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        out = []
        for k, d in zip(kernel_size, dilation, strict=True):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return (out[0], out[1], out[2], out[3])
    if isinstance(padding, str):
        raise ConfigError(f"padding={padding!r} is unknown; use an int, a pair, 'same' or 'valid'")
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def conv2d_synops(
    x: torch.Tensor,
    out_channels: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> int:
    r"""Synaptic operations of a 2-D convolution: :math:`\sum_{\text{events}}` fan-out.

    The fan-out of input element :math:`(c, h, w)` is the number of (output position, output
    channel) pairs whose receptive field contains it. Summed over the events, that is the sum of
    the convolution of the non-zero indicator of ``x`` with an all-ones kernel
    ``[out_channels, in_channels/groups, k_h, k_w]`` under the layer's stride, padding, dilation
    and groups; it is exact for every combination of them. Non-zero ``padding_mode`` (reflect,
    replicate, circular) copies border elements into the padding, and those copies reach further
    outputs: the indicator is padded the same way so they count too.

    Args:
        x: input ``[N, C, H, W]`` (any number of leading axes, folded) or ``[C, H, W]``.
    """
    if x.dim() < 3:
        raise ShapeError(f"conv2d input has shape {list(x.shape)}; it needs [..., C, H, W]")
    kh, kw = _pair(kernel_size)
    dil = _pair(dilation)
    c = x.shape[-3]
    if c % groups or out_channels % groups:
        raise ConfigError(f"groups={groups} must divide in_channels={c} and out_channels")
    # The convolution is linear, so summing the indicator over samples first gives the same total.
    ind = (x.detach() != 0).reshape(-1, *x.shape[-3:]).sum(dim=0, dtype=torch.float64)[None]
    if ind.device.type == "mps":  # no float64 there
        ind = ind.cpu()
    ones = torch.ones(out_channels, c // groups, kh, kw, dtype=torch.float64, device=ind.device)
    top, bottom, left, right = explicit_padding(padding, (kh, kw), dil)
    if padding_mode == "zeros":
        ind = F.pad(ind, (left, right, top, bottom))
    else:
        ind = F.pad(ind, (left, right, top, bottom), mode=padding_mode)
    y = F.conv2d(ind, ones, stride=_pair(stride), padding=0, dilation=dil, groups=groups)
    return round(float(y.sum()))


def conv2d_synops_bruteforce(
    x: torch.Tensor,
    out_channels: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> int:
    """Reference for :func:`conv2d_synops` (zero padding only): loop over every input event and
    every output position and channel, and count the pairs the kernel connects. Slow; for tests.
    """
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    c, h, w = x.shape[-3:]
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cout_g = out_channels // groups
    total = 0
    for sample in x.reshape(-1, c, h, w):
        for _ci, hi, wi in torch.nonzero(sample).tolist():
            positions = 0
            for oy in range(oh):
                for ox in range(ow):
                    # input row hi is tap ky of output oy when oy*sh - ph + ky*dh == hi
                    hits_y = any(oy * sh - ph + ky * dh == hi for ky in range(kh))
                    hits_x = any(ox * sw - pw + kx * dw == wi for kx in range(kw))
                    positions += hits_y and hits_x
            # the input channel feeds the out_channels/groups channels of its own group
            total += positions * cout_g
    return total
