r"""Hand a local rule's :math:`\Delta W` to any torch optimiser.

Sign convention: a rule returns the change it wants, :math:`\Delta W`; the learner stores
:math:`-\Delta W` in ``weight.grad``, because optimisers *descend* the gradient. Plain SGD with
``lr=1`` then applies exactly :math:`W \leftarrow W + \Delta W`; any other optimiser, scheduler,
gradient scaler or distributed wrapper works unchanged::

    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    window, traces = pair_stdp(view.pre_rows(x), view.post_rows(y), params)
    write_grad(layer.weight, soft_bound(window, view.matrix(layer.weight.detach())))
    opt.step(); opt.zero_grad()
"""

from __future__ import annotations

import torch

from deepspike.errors import ShapeError


def write_grad(weight: torch.Tensor, dw: torch.Tensor, accumulate: bool = True) -> None:
    r"""Add :math:`-\Delta W` to ``weight.grad`` (or replace it when ``accumulate=False``).

    ``dw`` may be in the row view's shape (``[C', C*kh*kw]`` for a conv kernel); it is reshaped
    to the weight's own shape.
    """
    if dw.numel() != weight.numel():
        raise ShapeError(
            f"update of shape {list(dw.shape)} does not fit weight {list(weight.shape)}"
        )
    grad = -dw.detach().reshape(weight.shape).to(weight.dtype)
    if accumulate and weight.grad is not None:
        weight.grad.add_(grad)
    else:
        weight.grad = grad.clone()


@torch.no_grad()
def apply_update(
    weight: torch.Tensor,
    dw: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    bounds: tuple[float, float] | None = None,
) -> None:
    """Write ``dw`` with :func:`write_grad`, step ``optimizer``, clear the gradients, then clip
    the weight into ``bounds`` (hard bounds of additive STDP) if given."""
    write_grad(weight, dw, accumulate=False)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if bounds is not None:
        weight.clamp_(*bounds)
