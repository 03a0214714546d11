"""Tests of the surrogate derivatives: the backward pass is the derivative of the primitive."""

from __future__ import annotations

import pytest
import torch

from deepspike.neurons import LIF, LIFParams, run
from deepspike.surrogate import (
    DEFAULT_SURROGATE,
    ArcTan,
    FastSigmoid,
    StraightThrough,
    SuperSpike,
    Surrogate,
    Triangle,
    heaviside,
)

SURROGATES: list[Surrogate] = [
    FastSigmoid(),
    FastSigmoid(alpha=2.0),
    SuperSpike(),
    SuperSpike(beta=3.0),
    ArcTan(),
    ArcTan(alpha=5.0),
    Triangle(),
    Triangle(width=0.5, gamma=2.0),
    StraightThrough(),
]

# Away from 0 (the kink of |x|) and from the triangle's kinks at +-width (0.5 and 1.0 here).
POINTS = torch.tensor(
    [-3.0, -1.3, -0.9, -0.7, -0.3, -0.12, -0.02, 0.015, 0.08, 0.2, 0.45, 0.62, 0.8, 1.1, 2.5],
    dtype=torch.float64,
)


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_backward_is_the_derivative_of_the_primitive(sg: Surrogate) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        # forward: the primitive; backward: the spike function's surrogate derivative
        spikes = heaviside(x, sg)
        return spikes - spikes.detach() + sg.primitive(x).detach()

    x = POINTS.clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)
    # and derivative() is what backward uses
    x.grad = None
    heaviside(x, sg).sum().backward()
    torch.testing.assert_close(x.grad, sg.derivative(POINTS))


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_forward_is_the_heaviside_step(sg: Surrogate) -> None:
    x = torch.tensor([-2.0, -1e-7, 0.0, 1e-7, 0.5, 3.0])
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    assert torch.equal(heaviside(x, sg), expected)
    assert torch.equal(sg(x), expected)  # __call__ is the same spike function
    assert heaviside(x.double(), sg).dtype == torch.float64


@pytest.mark.parametrize("sg", SURROGATES, ids=repr)
def test_surrogate_gradient_flows_through_a_lif_run(sg: Surrogate) -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(30, 4, 6, generator=gen) * 0.8).requires_grad_()
    spikes = run(LIFParams(tau_mem=5.0, surrogate=sg), x).spikes
    assert spikes.sum() > 0
    spikes.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_lif_layer_uses_the_default_surrogate() -> None:
    layer = LIF()
    assert layer.model.surrogate == DEFAULT_SURROGATE
    x = torch.rand(20, 2, 3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_surrogates_are_values() -> None:
    assert FastSigmoid(alpha=3.0) == FastSigmoid(alpha=3.0)
    assert Triangle() != Triangle(width=2.0)
    with pytest.raises(AttributeError):
        ArcTan().alpha = 1.0  # frozen
