r"""Fold batch normalisation into the preceding linear or convolutional layer.

In inference, batch normalisation is an affine map per output unit :math:`k`:

.. math::

    \mathrm{BN}(z)_k = \gamma_k \frac{z_k - \mu_k}{\sqrt{\sigma_k^2 + \epsilon}} + \beta_k,

so after :math:`z = Wx + b` it folds exactly into new weights and biases (Rueckauer et al. 2017,
*Conversion of continuous-valued deep networks to efficient event-driven networks for image
classification*, Front. Neurosci. 11:682, Sec. 2.2.3):

.. math::

    W'_k = \frac{\gamma_k}{\sqrt{\sigma_k^2+\epsilon}} W_k, \qquad
    b'_k = \frac{\gamma_k}{\sqrt{\sigma_k^2+\epsilon}} (b_k - \mu_k) + \beta_k .
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepspike.errors import ConfigError

Foldable = nn.Linear | nn.Conv2d


def batchnorm_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """The inference-time ``(scale, shift)`` of ``bn``: ``BN(z) = scale * z + shift`` per unit."""
    if bn.running_mean is None or bn.running_var is None:
        raise ConfigError(
            f"{type(bn).__name__} has no running statistics (track_running_stats=False), so it "
            "cannot be folded; train it with track_running_stats=True"
        )
    gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    return scale, beta - scale * bn.running_mean


def fold_batchnorm(layer: Foldable, bn: nn.modules.batchnorm._BatchNorm) -> Foldable:
    """A copy of ``layer`` with ``bn`` folded in: ``fold(layer)(x) == bn(layer(x))`` in eval mode.

    The copy always has a bias (the folded shift). ``layer`` and ``bn`` are left unchanged.
    """
    out_units = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if bn.num_features != out_units:
        raise ConfigError(
            f"{type(bn).__name__}({bn.num_features}) cannot follow a layer with {out_units} "
            "output units"
        )
    scale, shift = batchnorm_affine(bn)
    folded = copy.deepcopy(layer)
    weight = layer.weight.detach()
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(scale)
    view = (-1,) + (1,) * (weight.dim() - 1)
    with torch.no_grad():
        folded.weight = nn.Parameter(weight * scale.reshape(view))
        folded.bias = nn.Parameter(bias * scale + shift)
    return folded
