"""Spiking layers: time folding, shape errors, spike-gated pooling, recurrence and competition."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepspike.errors import ShapeError
from deepspike.layers import (
    AvgPool2d,
    Conv2d,
    Flatten,
    LateralInhibition,
    Linear,
    MaxPool2d,
    Recompute,
    RecurrentDense,
    k_winners,
)
from deepspike.layers.competition import inhibited_scan, state_tensors
from deepspike.learning import AdaptiveThreshold
from deepspike.neurons import CobaLIFParams, IFParams, LIFParams, Neuron, run
from deepspike.neurons.base import step_loop


def test_linear_and_conv_equal_a_per_step_loop():
    torch.manual_seed(0)
    lin, conv = Linear(6, 4), Conv2d(2, 3, 3, padding=1, stride=2)
    x, img = torch.rand(5, 3, 6), torch.rand(5, 3, 2, 7, 7)
    assert torch.allclose(lin(x), torch.stack([x_t @ lin.weight.T + lin.bias for x_t in x]))
    per_step = torch.stack(
        [torch.nn.functional.conv2d(i, conv.weight, conv.bias, 2, 1) for i in img]
    )
    assert torch.allclose(conv(img), per_step, atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "bad"),
    [
        (Linear(6, 4), torch.rand(3, 5)),  # no time axis
        (Linear(6, 4), torch.rand(2, 3, 5)),  # wrong feature size
        (Conv2d(2, 3, 3), torch.rand(3, 2, 7, 7)),  # missing T
        (Conv2d(2, 3, 3), torch.rand(4, 3, 1, 7, 7)),  # wrong channels
        (MaxPool2d(2), torch.rand(3, 7, 7)),
        (Flatten(), torch.rand(3, 4)),
        (RecurrentDense(4, 2, LIFParams()), torch.rand(3, 2, 5)),
    ],
)
def test_wrong_input_shape_raises_shape_error_naming_the_shape(layer, bad):
    with pytest.raises(ShapeError, match=r"\[T, B"):
        layer(bad)


def test_spike_gated_max_pool_fires_when_any_input_in_the_window_fires():
    x = torch.zeros(2, 1, 1, 4, 4)
    x[0, 0, 0, 0, 1] = 1.0  # top-left window at t=0
    x[1, 0, 0, 3, 3] = 1.0  # bottom-right window at t=1
    y = MaxPool2d(2)(x)
    assert y.shape == (2, 1, 1, 2, 2)
    assert y[0, 0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert y[1, 0, 0].tolist() == [[0.0, 0.0], [0.0, 1.0]]
    assert AvgPool2d(2)(x)[0, 0, 0, 0, 0] == 0.25


def test_flatten_keeps_time_and_batch():
    assert Flatten()(torch.rand(3, 2, 4, 5, 6)).shape == (3, 2, 120)


def test_recurrent_dense_equals_a_hand_written_loop():
    torch.manual_seed(1)
    layer = RecurrentDense(5, 4, LIFParams(tau_mem=5.0))
    with torch.no_grad():
        layer.recurrent.weight.copy_(torch.randn(4, 4))
    x = (torch.rand(8, 2, 5) < 0.5).float()
    model = LIFParams(tau_mem=5.0)
    state, s, expected = model.initial_state(torch.zeros(2, 4)), torch.zeros(2, 4), []
    for x_t in x:
        drive = x_t @ layer.input.weight.T + layer.input.bias + s @ layer.recurrent.weight.T
        s, state = model.step(drive, state)
        expected.append(s)
    assert torch.equal(layer(x), torch.stack(expected))


def test_recurrent_connections_change_the_output():
    torch.manual_seed(2)
    layer = RecurrentDense(5, 4, IFParams())
    x = torch.rand(10, 3, 5) * 2
    with torch.no_grad():
        layer.recurrent.weight.zero_()
    silent = layer(x)
    with torch.no_grad():
        layer.recurrent.weight.fill_(-5.0)
    assert layer(x).sum() < silent.sum()


def test_k_winners_keeps_at_most_k_spikes_with_the_highest_scores():
    spikes = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    scores = torch.tensor([[0.1, 0.9, 5.0, 0.5, 0.7], [1.0, 2.0, 3.0, 4.0, 5.0]])
    kept = k_winners(spikes, scores, 2)
    assert kept.tolist() == [[0.0, 1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]]


def test_k_wta_layer_never_leaves_more_than_k_winners_per_step():
    torch.manual_seed(3)
    layer = Neuron(LateralInhibition(IFParams(), k=2))
    out = layer(torch.rand(20, 4, 10) * 3)
    assert out.sum(-1).max() <= 2
    assert out.sum() > 0


def test_lateral_inhibition_reduces_co_activity():
    torch.manual_seed(4)
    x = torch.rand(50, 4, 16) * 0.6
    free = run(LIFParams(tau_mem=20.0), x).spikes
    inhibited = run(LateralInhibition(LIFParams(tau_mem=20.0), strength=0.3), x).spikes
    assert inhibited.sum() < 0.8 * free.sum()
    assert torch.equal(run(LateralInhibition(LIFParams(tau_mem=20.0)), x).spikes, free)


@settings(max_examples=25, deadline=None)
@given(
    adaptive=st.booleans(),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    t_ref=st.sampled_from([0.0, 3.0]),
    strength=st.sampled_from([0.0, 0.7]),
    threshold_per_neuron=st.booleans(),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_compiled_inhibited_scan_equals_the_step_loop(
    adaptive, reset, t_ref, strength, threshold_per_neuron, batch, seed
):
    """The numba scan of inhibited (adaptive) LIF neurons is bit-identical to stepping."""
    g = torch.Generator().manual_seed(seed)
    n = 7
    v_th = 1.0 + torch.rand(n, generator=g) if threshold_per_neuron else 1.0
    lif = LIFParams(tau_mem=8.0, v_th=v_th, v_reset=0.2, reset=reset, t_ref=t_ref)
    inner = AdaptiveThreshold(lif, 0.3, 50.0, theta_init=0.1 * torch.rand(n, generator=g))
    model = LateralInhibition(inner if adaptive else lif, strength=strength)
    x = torch.rand(30, batch, n, generator=g) * 1.5
    state = model.initial_state(x[0])
    scanned = run(model, x, state)
    stepped = step_loop(model, x, state)
    assert torch.equal(scanned.spikes, stepped.spikes) and stepped.spikes.sum() > 0
    for a, b in zip(state_tensors(scanned.state), state_tensors(stepped.state), strict=True):
        assert torch.equal(a, b)
    resumed = run(model, x[10:], run(model, x[:10], state).state).spikes  # state carries over
    assert torch.equal(resumed, stepped.spikes[10:])


@settings(max_examples=12, deadline=None)
@given(
    adaptive=st.booleans(),
    t_ref=st.sampled_from([0.0, 3.0]),
    t_refire=st.sampled_from([0.0, 8.0]),
    strength=st.sampled_from([0.0, 4.0]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_compiled_conductance_scan_equals_the_step_loop(
    adaptive, t_ref, t_refire, strength, dtype, seed
):
    """The numba scan of inhibited conductance-based neurons follows stepping: the same spikes
    and states equal to rounding (the scan's ``exp`` is numba's, the step's torch's)."""
    g = torch.Generator().manual_seed(seed)
    n = 7
    vth = 10.0 + torch.rand(n, generator=g)
    coba = CobaLIFParams(tau_mem=20.0, v_th=vth, t_ref=t_ref, t_refire=t_refire)
    inner = AdaptiveThreshold(coba, 0.5, 50.0, theta_init=torch.rand(n, generator=g))
    model = LateralInhibition(inner if adaptive else coba, strength=strength)
    x = (torch.rand(40, 2, n, generator=g) * 1.2).to(dtype)
    state = model.initial_state(x[0])
    scanned = run(model, x, state)
    stepped = step_loop(model, x, state)
    assert torch.equal(scanned.spikes, stepped.spikes) and stepped.spikes.sum() > 0
    for a, b in zip(state_tensors(scanned.state), state_tensors(stepped.state), strict=True):
        torch.testing.assert_close(a, b)


def test_conductance_inhibition_opens_the_others_inhibitory_conductance():
    """Around a conductance-based neuron, a spike adds ``strength`` to every other neuron's
    inhibitory conductance (not to its own), and leaves the excitatory input alone."""
    coba = CobaLIFParams(v_th=1.0)
    model = LateralInhibition(AdaptiveThreshold(coba, 0.0, 1e7), strength=17.0)
    x = torch.tensor([[3.0, 0.0, 0.0]])
    state = model.initial_state(x)
    spikes, state = model.step(x, state)
    assert spikes.tolist() == [[1.0, 0.0, 0.0]]
    _, state = model.step(torch.zeros_like(x), state)
    d_inh = coba.constants.decay_inh
    torch.testing.assert_close(state.inner.inner.g_inh, torch.tensor([[0.0, 17.0, 17.0]]) * d_inh)
    assert (state.inner.inner.v[0, 1:] < 0).all()


def test_inhibited_scan_steps_through_time_when_a_gradient_is_needed():
    x = torch.rand(6, 2, 4, requires_grad=True)
    model = LateralInhibition(LIFParams(), strength=0.5)
    assert inhibited_scan(model, x, model.initial_state(x[0])) is None
    with torch.no_grad():
        assert inhibited_scan(model, x, model.initial_state(x[0])) is not None
    assert inhibited_scan(LateralInhibition(LIFParams(), k=1), x.detach(), None) is None


def _lean_pair(recompute: bool, dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(5)
    blocks = [
        torch.nn.Sequential(Linear(12, 16), torch.nn.Dropout(dropout), Neuron(LIFParams())),
        torch.nn.Sequential(Linear(16, 3), Neuron(LIFParams(), output="membrane")),
    ]
    return torch.nn.Sequential(*(Recompute(b) if recompute else b for b in blocks))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_recompute_gives_the_plain_gradients(dropout):
    x = (torch.rand(20, 4, 12, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    grads = []
    for recompute in (False, True):
        model = _lean_pair(recompute, dropout)
        torch.manual_seed(9)  # the same dropout masks in both runs
        out = model(x)
        out.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        assert out.requires_grad
    for plain, lean in zip(*grads, strict=True):
        assert plain.abs().sum() > 0
        assert torch.allclose(plain, lean, rtol=1e-5, atol=1e-6)


def test_recompute_keeps_binary_input_as_bytes_and_analog_as_is():
    from deepspike.layers.recompute import pack, unpack

    spikes = (torch.rand(5, 3) < 0.5).float()
    stored, dtype = pack(spikes)
    assert stored.dtype == torch.bool and torch.equal(unpack(stored, dtype), spikes)
    analog = torch.rand(5, 3)
    assert pack(analog)[1] is None and pack(analog)[0] is analog


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter storages autograd keeps for the backward."""
    storages = {}
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def keep(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(storages.values())


def test_recompute_keeps_only_the_inputs_as_bytes():
    t, b, n_in = 30, 8, 12
    x = (torch.rand(t, b, n_in) < 0.3).float()
    plain = _saved_bytes(_lean_pair(False), x)
    lean = _saved_bytes(_lean_pair(True), x)
    # one byte per input element and per hidden spike, nothing else
    assert lean == t * b * n_in + t * b * 16
    assert plain >= 4 * (t * b * n_in + 2 * t * b * 16)  # float input, membrane and spikes


def test_recompute_refuses_stateful_blocks():
    from deepspike.errors import ConfigError

    with pytest.raises(ConfigError, match="stateful"):
        Recompute(torch.nn.Sequential(Linear(2, 2), Neuron(LIFParams(), stateful=True)))
