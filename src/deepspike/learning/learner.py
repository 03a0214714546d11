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


def write_row_grad(weight: torch.Tensor, units: torch.Tensor, dw_rows: torch.Tensor) -> None:
    r"""Store :math:`-\Delta W` as a row-sparse gradient: ``dw_rows`` ``[K, ...]`` are the
    updates of ``weight[units]`` (in the weight's own shape or the row view's, e.g.
    ``[K, C*kh*kw]`` for a conv kernel); the other rows do not change.

    The gradient is a sparse COO tensor with one sparse dimension, which torch's ``SGD``
    (without momentum or weight decay), ``SparseAdam`` and ``Adagrad`` apply in time
    proportional to ``K``. ``units`` must not repeat.
    """
    row_size = weight[0].numel() if len(weight) else 0
    if dw_rows.shape[0] != len(units) or dw_rows.numel() != len(units) * row_size:
        raise ShapeError(
            f"row update of shape {list(dw_rows.shape)} does not fit {len(units)} rows of "
            f"weight {list(weight.shape)}"
        )
    values = -dw_rows.detach().reshape(len(units), *weight.shape[1:]).to(weight.dtype)
    weight.grad = torch.sparse_coo_tensor(
        units.unsqueeze(0), values, weight.shape, is_coalesced=True, check_invariants=False
    )


@torch.no_grad()
def apply_update(
    weight: torch.Tensor,
    dw: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    bounds: tuple[float, float] | None = None,
    units: torch.Tensor | None = None,
) -> None:
    """Write ``dw`` with :func:`write_grad`, step ``optimizer``, clear the gradients, then clip
    the weight into ``bounds`` (hard bounds of additive STDP) if given.

    With ``units`` (ascending, no repeats), ``dw`` holds the rows ``weight[units]`` only
    (:func:`write_row_grad`), and only those rows are clipped.
    """
    if units is None:
        write_grad(weight, dw, accumulate=False)
    else:
        write_row_grad(weight, units, dw)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if bounds is None:
        return
    if units is None:
        weight.clamp_(*bounds)
    else:
        weight[units] = weight[units].clamp(*bounds)
