"""Exact spike-time gradients (Mostafa 2017): closed form, causal sets, gradients, coding."""

import math

import pytest
import torch
from torch.nn import functional as F

from deepspike import spiketime as st
from deepspike.errors import ConfigError, InputValueError, ShapeError


def membrane(t: float, times: list[float], weights: list[float]) -> float:
    """V(t) = sum_i w_i (1 - exp(-(t - t_i))) over the inputs that arrived by t."""
    return sum(
        w * (1.0 - math.exp(-(t - ti))) for ti, w in zip(times, weights, strict=True) if ti <= t
    )


def simulate_first_spike(z: list[float], w: list[float]) -> float:
    """Brute-force event-driven simulation: walk the inputs in time order and, in each interval
    between two arrivals, find where V first reaches 1 by bisection on V itself. Returns
    z = exp(t_spike) or inf. Independent of the closed form."""
    events = sorted((math.log(v), wi) for v, wi in zip(z, w, strict=True) if math.isfinite(v))
    times, weights = [t for t, _ in events], [wi for _, wi in events]
    for k, t_k in enumerate(times):
        t_next = times[k + 1] if k + 1 < len(times) else t_k + 50.0  # V has settled by then
        if t_next == t_k:
            continue
        # V is monotone between arrivals (dV/dt = sum_C w_i e^{-(t - t_i)} keeps one sign).
        if membrane(t_next, times, weights) < 1.0 or membrane(t_k, times, weights) >= 1.0:
            if membrane(t_k, times, weights) >= 1.0:
                return math.exp(t_k)
            continue
        lo, hi = t_k, t_next
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if membrane(mid, times, weights) >= 1.0 else (mid, hi)
        return math.exp(hi)
    return math.inf


def random_problem(seed: int, b=16, n=10, o=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.exp(2.0 * torch.rand(b, n, generator=g, dtype=dtype))
    w = 0.5 * torch.randn(o, n, generator=g, dtype=dtype) + 0.2
    return z, w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_matches_event_driven_simulation(seed):
    z, w = random_problem(seed)
    z[0, 3] = math.inf  # an input neuron that never spikes
    z[1, :4] = z[1, 4]  # simultaneous input spikes
    got = st.first_spike_sorted(z, w).z
    n_fired = 0
    for b in range(z.shape[0]):
        for o in range(w.shape[0]):
            want = simulate_first_spike(z[b].tolist(), w[o].tolist())
            if math.isinf(want):
                assert math.isinf(got[b, o].item()), (b, o)
            else:
                n_fired += 1
                assert got[b, o].item() == pytest.approx(want, rel=1e-9), (b, o)
    assert n_fired > 10  # the check covers firing and silent neurons


def test_membrane_reaches_threshold_exactly_at_the_closed_form_time():
    z, w = random_problem(3, b=4, n=8, o=3)
    out = st.first_spike_sorted(z, w).z
    times = torch.log(z)
    for b in range(4):
        for o in range(3):
            if torch.isfinite(out[b, o]):
                t = math.log(out[b, o].item())
                v = membrane(t, times[b].tolist(), w[o].tolist())
                assert v == pytest.approx(1.0, abs=1e-9)
                assert membrane(t - 1e-6, times[b].tolist(), w[o].tolist()) < 1.0


def test_causal_set_counts_inputs_before_the_spike():
    z = torch.tensor([[1.0, 2.0, 5.0]], dtype=torch.float64)
    w = torch.tensor([[0.8, 0.8, 5.0]], dtype=torch.float64)  # fires after the second input
    spikes = st.first_spike_sorted(z, w)
    assert spikes.n_causal.item() == 2
    assert spikes.z.item() == pytest.approx((0.8 * 1 + 0.8 * 2) / (1.6 - 1.0))


def test_neuron_with_too_little_weight_stays_silent():
    z = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    spikes = st.first_spike_sorted(z, torch.tensor([[0.4, 0.5]], dtype=torch.float64))
    assert math.isinf(spikes.z.item()) and spikes.n_causal.item() == 2


def test_level_path_equals_sorted_path():
    g = torch.Generator().manual_seed(5)
    z = torch.exp(torch.randint(0, 4, (32, 20), generator=g).double() * 0.7)
    z[3, 5] = math.inf
    w = 0.4 * torch.randn(9, 20, generator=g, dtype=torch.float64) + 0.15
    by_sort = st.first_spike_sorted(z, w)
    by_level = st.first_spike(z, w)
    assert torch.equal(torch.isinf(by_sort.z), torch.isinf(by_level.z))
    finite = torch.isfinite(by_sort.z)
    assert torch.allclose(by_sort.z[finite], by_level.z[finite], rtol=1e-12)
    assert torch.equal(by_sort.n_causal, by_level.n_causal)


def test_weight_gradient_is_the_closed_form_derivative():
    z = torch.tensor([[1.0, 1.5, 4.0]], dtype=torch.float64)
    w = torch.tensor([[0.9, 0.7, 0.2]], dtype=torch.float64, requires_grad=True)
    out = st.first_spike_sorted(z, w).z
    out.sum().backward()
    denom = 0.9 + 0.7 - 1.0  # causal set: the first two inputs
    z_out = out.item()
    expected = torch.tensor([[(1.0 - z_out) / denom, (1.5 - z_out) / denom, 0.0]])
    assert torch.allclose(w.grad, expected.double())


def two_layer_loss(w1, w2, z, labels, k=0.1):
    """The training loss of a 2-layer network, written with the functional closed form."""
    out = st.first_spike_sorted(st.first_spike_sorted(z, w1).z, w2).z
    penalty = k * (F.relu(1 - w1.sum(1)).sum() + F.relu(1 - w2.sum(1)).sum())
    return st.spike_time_cross_entropy(out, labels) + penalty


def small_problem():
    torch.manual_seed(0)
    net = st.SpikeTimeNet((6, 5, 3), init_mean=3.0, init_std=1.0).double()
    z = torch.exp(torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    return net, z, torch.tensor([0, 1, 2, 1])


def test_gradient_matches_finite_differences():
    net, z, labels = small_problem()
    assert torch.isfinite(net(z)).all()  # every neuron fires: a smooth point of the loss
    w1 = net.layers[0].weight.detach().clone().requires_grad_(True)
    w2 = net.layers[1].weight.detach().clone().requires_grad_(True)
    z = z.clone().requires_grad_(True)
    # central differences of the loss in every weight and input time, float64
    assert torch.autograd.gradcheck(
        lambda a, b, c: two_layer_loss(a, b, c, labels), (w1, w2, z), eps=1e-6, atol=1e-6
    )


def test_module_gradient_equals_the_functional_closed_form():
    net, z, labels = small_problem()
    loss = st.spike_time_cross_entropy(net(z), labels) + st.weight_sum_cost(net, 0.1)
    loss.backward()  # the input layer runs the by-level search (z needs no gradient)
    w1 = net.layers[0].weight.detach().clone().requires_grad_(True)
    w2 = net.layers[1].weight.detach().clone().requires_grad_(True)
    g1, g2 = torch.autograd.grad(two_layer_loss(w1, w2, z, labels), (w1, w2))
    assert torch.allclose(net.layers[0].weight.grad, g1, atol=1e-10)
    assert torch.allclose(net.layers[1].weight.grad, g2, atol=1e-10)


def test_weight_sum_cost_penalises_small_weight_sums_only():
    net = st.SpikeTimeNet((3, 2))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[0.2, 0.3, 0.1], [1.0, 1.0, 1.0]]))
    assert st.weight_sum_cost(net, 2.0).item() == pytest.approx(2.0 * 0.4)


def test_encode_times_puts_bright_pixels_first():
    x = torch.tensor([[[0.9, 0.1], [0.6, 0.4]]])
    z = st.encode_times(x, t_max=2.0, levels=2)
    assert z.shape == (1, 4)
    assert torch.allclose(z, torch.exp(torch.tensor([[0.0, 2.0, 0.0, 2.0]])))
    graded = st.encode_times(x, t_max=2.0, levels=0)
    assert torch.allclose(torch.log(graded), 2.0 * (1 - x.reshape(1, -1)))
    dark = st.encode_times(x, t_max=2.0, levels=2, order="dark_first")
    assert torch.allclose(dark, torch.exp(torch.tensor([[2.0, 0.0, 2.0, 0.0]])))
    with pytest.raises(ConfigError):
        st.encode_times(x, levels=1)


def test_earliest_output_wins_and_silence_keeps_the_loss_finite():
    z = torch.tensor([[3.0, 1.5, math.inf], [math.inf, math.inf, 2.0]])
    assert st.predict_earliest(z).tolist() == [1, 2]
    loss = st.spike_time_cross_entropy(z, torch.tensor([2, 0]))
    assert torch.isfinite(loss)


def test_bad_shape_and_nan_input_raise_typed_errors():
    net = st.SpikeTimeNet((4, 3, 2))
    with pytest.raises(ShapeError, match=r"\[B, 4\]"):
        net(torch.ones(2, 5))
    with pytest.raises(ShapeError):
        net(torch.ones(2, 2, 2))
    z = torch.ones(2, 4)
    z[0, 1] = float("nan")
    with pytest.raises(InputValueError, match="NaN"):
        net(z)
    with pytest.raises(InputValueError, match="NaN"):
        st.encode_times(torch.full((1, 2, 2), float("nan")))


def test_cost_report_counts_causal_inputs():
    net = st.SpikeTimeNet((3, 1))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[0.8, 0.8, 5.0]]))
    report = st.cost_report(net, [torch.tensor([[1.0, 2.0, 5.0]])])
    layer = report.layer("layers.0")
    assert layer.input_events == 3 and layer.acs == 2 and layer.ann_macs == 3
    assert report.synops == 2 and report.spikes_per_neuron == 1.0


def test_weight_gradient_is_the_same_on_every_run():
    """Ties and several threads must not change the summation order (bit-exact repeat)."""
    z = torch.exp(torch.randint(0, 3, (16, 40), generator=torch.Generator().manual_seed(2)) * 0.5)
    z.requires_grad_(True)  # forces the sorted path, where ties are everywhere
    w = 0.1 * torch.randn(7, 40, generator=torch.Generator().manual_seed(3)) + 0.06
    grads = []
    for _ in range(3):
        wr = w.clone().requires_grad_(True)
        st.spike_time_cross_entropy(st.first_spike(z, wr).z, torch.arange(16) % 7).backward()
        grads.append(wr.grad)
    assert all(torch.equal(grads[0], g) for g in grads[1:])
