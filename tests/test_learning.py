"""Plasticity rules, traces, views, homeostasis, competition and the learner."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from deepspike.errors import ConfigError, ShapeError
from deepspike.layers import LateralInhibition
from deepspike.learning import (
    AdaptiveThreshold,
    ConvView,
    DenseView,
    PairSTDP,
    PairTraces,
    TripletSTDP,
    Window,
    additive,
    apply_update,
    box,
    conv_k_winners,
    earliest_first,
    feature_inhibition,
    nessler_stdp,
    normalize_incoming,
    order_stdp,
    order_stdp_rows,
    pair_stdp,
    pair_stdp_rows,
    position_inhibition,
    rstdp,
    rstdp_rows,
    soft_bound,
    trace,
    triplet_stdp,
    triplet_stdp_rows,
    view_of,
    write_grad,
    write_row_grad,
)
from deepspike.neurons import LIFParams, SRMParams, run
from deepspike.recipes._stdp_common import torch_threads
from deepspike.recipes.diehl2015_stdp import DIEHL_COOK_STDP


def spike_train(steps: int, times: list[int]) -> torch.Tensor:
    s = torch.zeros(steps, 1, 1, dtype=torch.float64)
    s[times] = 1.0
    return s


# --------------------------------------------------------------------------- pair STDP


@pytest.mark.parametrize("mode", ["all_to_all", "nearest", "immediate"])
@pytest.mark.parametrize("lag", [0, 1, 7, 25])
def test_pre_before_post_potentiates_on_the_exponential_window(mode, lag):
    params = PairSTDP(a_plus=0.8, a_minus=0.5, tau_plus=16.8, tau_minus=33.7, trace=mode)
    window, _ = pair_stdp(spike_train(40, [3]), spike_train(40, [3 + lag]), params)
    assert additive(window).item() == pytest.approx(0.8 * math.exp(-lag / 16.8), rel=1e-12)


@pytest.mark.parametrize("mode", ["all_to_all", "nearest", "immediate"])
@pytest.mark.parametrize("lag", [1, 7, 25])
def test_post_before_pre_depresses_on_the_exponential_window(mode, lag):
    params = PairSTDP(a_plus=0.8, a_minus=0.5, tau_plus=16.8, tau_minus=33.7, trace=mode)
    window, _ = pair_stdp(spike_train(40, [3 + lag]), spike_train(40, [3]), params)
    assert additive(window).item() == pytest.approx(-0.5 * math.exp(-lag / 33.7), rel=1e-12)


def test_all_to_all_sums_every_pair_and_nearest_only_the_latest():
    pre, post = spike_train(30, [2, 5]), spike_train(30, [10])
    a2a = PairSTDP(a_plus=1.0, a_minus=0.0, tau_plus=10.0)
    nearest = PairSTDP(a_plus=1.0, a_minus=0.0, tau_plus=10.0, trace="nearest")
    both = math.exp(-0.8) + math.exp(-0.5)
    assert additive(pair_stdp(pre, post, a2a)[0]).item() == pytest.approx(both)
    assert additive(pair_stdp(pre, post, nearest)[0]).item() == pytest.approx(math.exp(-0.5))


def reference_pair_stdp(pre, post, p, modulation=None):
    """A plain per-step loop over traces: the definition the event-driven rule must match."""
    d_plus, d_minus = math.exp(-p.dt / p.tau_plus), math.exp(-p.dt / p.tau_minus)
    x_pre = torch.zeros(pre.shape[1:], dtype=torch.float64)
    x_post = torch.zeros(post.shape[1:], dtype=torch.float64)
    ltp = torch.zeros(post.shape[2], pre.shape[2], dtype=torch.float64)
    ltd = torch.zeros_like(ltp)
    for t in range(pre.shape[0]):
        m = torch.ones(pre.shape[1], dtype=torch.float64) if modulation is None else modulation
        x_post = d_minus * x_post  # the post trace just before this step's spikes
        ltd += (x_post * m[:, None]).T @ pre[t]
        if p.trace == "nearest":
            x_pre = torch.where(pre[t] > 0, 1.0, d_plus * x_pre)
            x_post = torch.where(post[t] > 0, 1.0, x_post)
        else:
            x_pre = d_plus * x_pre + pre[t]
            x_post = x_post + post[t]
        ltp += (post[t] * m[:, None]).T @ x_pre
    return p.a_plus * ltp, p.a_minus * ltd, x_pre, x_post


@pytest.mark.parametrize("mode", ["all_to_all", "nearest"])
def test_event_driven_pair_stdp_matches_the_per_step_reference(mode):
    g = torch.Generator().manual_seed(1)
    pre = (torch.rand(80, 6, 9, generator=g) < 0.1).double()
    post = (torch.rand(80, 6, 4, generator=g) < 0.06).double()
    reward = torch.randn(6, generator=g, dtype=torch.float64)
    p = PairSTDP(a_plus=0.3, a_minus=0.2, tau_plus=7.0, tau_minus=11.0, trace=mode)
    window, traces = pair_stdp(pre, post, p, modulation=reward)
    ltp, ltd, x_pre, x_post = reference_pair_stdp(pre, post, p, reward)
    torch.testing.assert_close(window.ltp, ltp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(window.ltd, ltd, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(traces.pre, x_pre)
    torch.testing.assert_close(traces.post, x_post)


@pytest.mark.parametrize("mode", ["all_to_all", "nearest", "immediate"])
def test_a_run_cut_into_chunks_gives_the_same_window(mode):
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(90, 3, 8, generator=g) < 0.15).double()
    post = (torch.rand(90, 3, 5, generator=g) < 0.08).double()
    p = PairSTDP(trace=mode)
    whole, _ = pair_stdp(pre, post, p)
    traces, ltp, ltd = None, 0.0, 0.0
    for chunk in (slice(0, 13), slice(13, 14), slice(14, 60), slice(60, 90)):
        window, traces = pair_stdp(pre[chunk], post[chunk], p, traces)
        ltp, ltd = ltp + window.ltp, ltd + window.ltd
    torch.testing.assert_close(ltp, whole.ltp)
    torch.testing.assert_close(ltd, whole.ltd)


def reference_immediate_pair_stdp(pre, post, p, modulation=None):
    """Immediate pairs by a plain per-step loop over the state of every synapse: a pre spike
    waits for the unit's next post spike (LTP), a post spike for the input's next pre spike
    (LTD); any spike of either side in between cancels the wait. Pre before post in a step."""
    steps, rows, n_in = pre.shape
    n_out = post.shape[2]
    d_plus, d_minus = math.exp(-p.dt / p.tau_plus), math.exp(-p.dt / p.tau_minus)
    last_pre, last_post = [[0] * n_in for _ in range(rows)], [[0] * n_out for _ in range(rows)]
    pre_waits = torch.zeros(rows, n_out, n_in, dtype=torch.bool)  # pre spike not yet paired
    post_waits = torch.zeros(rows, n_out, n_in, dtype=torch.bool)  # post spike not yet paired
    ltp = torch.zeros(n_out, n_in, dtype=torch.float64)
    ltd = torch.zeros_like(ltp)
    for t in range(steps):
        for r in range(rows):
            m = 1.0 if modulation is None else float(modulation[r])
            for i in range(n_in):
                if pre[t, r, i] != 0:
                    for k in range(n_out):
                        if post_waits[r, k, i]:
                            lag = t - last_post[r][k]
                            ltd[k, i] += m * float(pre[t, r, i]) * d_minus**lag
                        post_waits[r, k, i], pre_waits[r, k, i] = False, True
                    last_pre[r][i] = t
            for k in range(n_out):
                if post[t, r, k] != 0:
                    for i in range(n_in):
                        if pre_waits[r, k, i]:
                            lag = t - last_pre[r][i]
                            ltp[k, i] += m * float(post[t, r, k]) * d_plus**lag
                        pre_waits[r, k, i], post_waits[r, k, i] = False, True
                    last_post[r][k] = t
    return p.a_plus * ltp, p.a_minus * ltd


@pytest.mark.parametrize("seed", [11, 12])
def test_immediate_pairs_match_the_per_synapse_reference(seed):
    g = torch.Generator().manual_seed(seed)
    pre = (torch.rand(70, 3, 7, generator=g) < 0.15).double()
    pre[pre > 0] += (torch.rand(int(pre.sum()), generator=g) < 0.2).double()  # some counts 2
    post = (torch.rand(70, 3, 4, generator=g) < 0.1).double()
    post[:, 1, :2] = (torch.rand(70, 2, generator=g) < 0.4).double()  # a fast unit or two
    reward = torch.randn(3, generator=g, dtype=torch.float64)
    p = PairSTDP(a_plus=0.3, a_minus=0.2, tau_plus=7.0, tau_minus=11.0, trace="immediate")
    window, traces = pair_stdp(pre, post, p, modulation=reward)
    ltp, ltd = reference_immediate_pair_stdp(pre, post, p, reward)
    torch.testing.assert_close(window.ltp, ltp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(window.ltd, ltd, rtol=1e-10, atol=1e-12)
    nearest = reference_pair_stdp(pre, post, replace(p, trace="nearest"))
    torch.testing.assert_close(traces.pre, nearest[2])  # its traces are nearest-spike traces
    torch.testing.assert_close(traces.post, nearest[3])


def test_immediate_pairs_only_neighbouring_spikes():
    p = PairSTDP(a_plus=1.0, a_minus=1.0, tau_plus=10.0, tau_minus=20.0, trace="immediate")
    # pre at 3 and 5, post at 8 and 9: only pre 5 potentiates, once, at post 8; no depression
    window, _ = pair_stdp(spike_train(12, [3, 5]), spike_train(12, [8, 9]), p)
    assert window.ltp.item() == pytest.approx(math.exp(-0.3)) and window.ltd.item() == 0.0
    nearest = pair_stdp(
        spike_train(12, [3, 5]),
        spike_train(12, [8, 9]),
        PairSTDP(a_plus=1.0, a_minus=1.0, tau_plus=10.0, tau_minus=20.0, trace="nearest"),
    )[0]
    assert nearest.ltp.item() == pytest.approx(math.exp(-0.3) + math.exp(-0.4))
    # post at 2, pre at 4 and 6, post at 10, pre at 12: pre 4 and pre 12 are depressed (by post
    # 2 and post 10), pre 6 potentiates at post 10; pre 4 does not (post 10 comes after pre 6)
    window, _ = pair_stdp(spike_train(14, [4, 6, 12]), spike_train(14, [2, 10]), p)
    assert window.ltp.item() == pytest.approx(math.exp(-0.4))
    assert window.ltd.item() == pytest.approx(2 * math.exp(-0.1))
    # pre and post in the same step pair as potentiation; the next pre spike is then depressed
    window, _ = pair_stdp(spike_train(10, [5, 7]), spike_train(10, [5]), p)
    assert window.ltp.item() == pytest.approx(1.0)
    assert window.ltd.item() == pytest.approx(math.exp(-0.1))


def test_immediate_pairs_continue_across_chunk_boundaries_in_every_order():
    # the carried traces tell which side spiked last at each synapse, ties included
    p = PairSTDP(a_plus=1.0, a_minus=1.0, tau_plus=10.0, tau_minus=20.0, trace="immediate")
    for pre_times, post_times in [([1], [3]), ([3], [1]), ([2], [2]), ([1, 3], [2]), ([], [2])]:
        pre = spike_train(12, [*pre_times, 8])
        post = spike_train(12, [*post_times, 10])
        whole, _ = pair_stdp(pre, post, p)
        first, traces = pair_stdp(pre[:5], post[:5], p)
        second, _ = pair_stdp(pre[5:], post[5:], p, traces)
        assert (first.ltp + second.ltp).item() == pytest.approx(whole.ltp.item())
        assert (first.ltd + second.ltd).item() == pytest.approx(whole.ltd.item())


def test_immediate_pairing_is_refused_where_it_has_no_meaning():
    with pytest.raises(ConfigError, match="nearest"):
        trace(spike_train(5, [1]), 10.0, mode="immediate")
    with pytest.raises(ConfigError, match="immediate"):
        TripletSTDP(trace="immediate")
    with pytest.raises(ConfigError, match="unknown"):
        PairSTDP(trace="closest")


@pytest.mark.parametrize("mode", ["nearest", "immediate"])
def test_sparse_input_gives_the_same_window_as_dense(mode):
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(50, 4, 10, generator=g) < 0.1).float()
    post = (torch.rand(50, 4, 3, generator=g) < 0.1).float()
    p = PairSTDP(trace=mode)
    dense, _ = pair_stdp(pre, post, p)
    sparse, _ = pair_stdp(pre.to_sparse(), post, p)
    torch.testing.assert_close(dense.ltp, sparse.ltp)
    torch.testing.assert_close(dense.ltd, sparse.ltd)


def test_row_window_holds_the_rows_of_the_units_that_fired_or_carry_a_trace():
    g = torch.Generator().manual_seed(5)
    pre = (torch.rand(40, 3, 12, generator=g) < 0.15).float()
    post = torch.zeros(40, 3, 9)
    post[[5, 17, 30], [0, 2, 1], [2, 2, 6]] = 1.0  # units 2 and 6 fire
    initial = PairTraces(torch.zeros(3, 12), torch.zeros(3, 9))
    initial.post[1, 4] = 0.5  # unit 4 carries a trace from an earlier chunk
    p = PairSTDP(trace="nearest")
    rows, rows_traces = pair_stdp_rows(pre, post, p, initial)
    dense, dense_traces = pair_stdp(pre, post, p, initial)
    assert rows.units.tolist() == [2, 4, 6]
    assert rows.ltp.shape == rows.ltd.shape == (3, 12)
    torch.testing.assert_close(rows.dense().ltp, dense.ltp)
    torch.testing.assert_close(rows.dense().ltd, dense.ltd)
    others = [u for u in range(9) if u not in (2, 4, 6)]
    assert float(dense.ltp[others].abs().sum() + dense.ltd[others].abs().sum()) == 0.0
    assert float(rows.ltd[1].sum()) > 0.0  # the carried trace depresses unit 4
    torch.testing.assert_close(rows_traces.post, dense_traces.post)


def test_a_silent_layer_gives_an_empty_row_window():
    pre = (torch.rand(20, 2, 5) < 0.3).float()
    rows, _ = pair_stdp_rows(pre, torch.zeros(20, 2, 4), PairSTDP())
    assert rows.units.numel() == 0 and rows.ltp.shape == (0, 5) and rows.ltd.shape == (0, 5)
    assert float(rows.dense().ltp.abs().sum()) == 0.0


def test_soft_bounds_keep_weights_in_range_under_many_random_updates():
    g = torch.Generator().manual_seed(4)
    w = torch.rand(20, 30, generator=g, dtype=torch.float64) * 2.0
    p = PairSTDP(a_plus=0.2, a_minus=0.2, tau_plus=10.0, tau_minus=10.0)
    for _ in range(60):
        pre = (torch.rand(20, 2, 30, generator=g) < 0.2).double()
        post = (torch.rand(20, 2, 20, generator=g) < 0.2).double()
        window, _ = pair_stdp(pre, post, p)
        scale = 1.0 / max(1.0, float((window.ltp + window.ltd).max()))  # keep LTP + LTD <= 1
        w = w + soft_bound(window._replace(ltp=window.ltp * scale, ltd=window.ltd * scale), w, 2.0)
        assert float(w.min()) >= 0.0 and float(w.max()) <= 2.0
    assert 0.1 < float(w.mean()) < 1.9  # it moved, and stayed inside


def test_soft_bound_scales_each_side_by_its_room():
    w = torch.tensor([[0.25, 0.75]])
    win = Window(torch.tensor([[0.1, 0.1]]), torch.tensor([[0.2, 0.2]]))
    expected = torch.tensor([[0.75 * 0.1 - 0.25 * 0.2, 0.25 * 0.1 - 0.75 * 0.2]])
    torch.testing.assert_close(soft_bound(win, w), expected)


# --------------------------------------------------------------------------- triplet STDP


def sjostrom_pairing(frequency_hz: float, lag_ms: int, pairs: int = 60) -> float:
    """Weight change after ``pairs`` pre/post pairings (Sjöström et al. 2001), dt = 1 ms."""
    period = round(1000 / frequency_hz)
    steps = pairs * period + 200
    pre, post = torch.zeros(steps, 1, 1), torch.zeros(steps, 1, 1)
    for k in range(pairs):
        t0 = 100 + k * period
        pre[t0 + max(0, -lag_ms)] = 1.0
        post[t0 + max(0, lag_ms)] = 1.0
    window, _ = triplet_stdp(pre.double(), post.double(), TripletSTDP())
    return additive(window).item()


def test_triplet_stdp_reproduces_the_frequency_dependence_of_pairing():
    for hz in (1, 5, 10):
        assert sjostrom_pairing(hz, -10) < 0  # post-pre pairing depresses at low frequency
    for hz in (40, 50):
        assert sjostrom_pairing(hz, +10) > 0 and sjostrom_pairing(hz, -10) > 0
    assert sjostrom_pairing(50, +10) > sjostrom_pairing(20, +10) > sjostrom_pairing(1, +10)


@pytest.mark.parametrize("a2_plus", [0.0, 3e-3])
def test_triplet_rows_equal_the_dense_nearest_triplet_rule(a2_plus):
    g = torch.Generator().manual_seed(5)
    pre = (torch.rand(60, 3, 7, generator=g) < 0.15).double()
    post = (torch.rand(60, 3, 5, generator=g) < 0.1).double()
    post[:, :, 4] = 0.0  # a silent unit gets no row
    modulation = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    params = replace(DIEHL_COOK_STDP, a2_plus=a2_plus)
    dense, _ = triplet_stdp(pre, post, params, modulation=modulation)
    rows = triplet_stdp_rows(pre, post, params, modulation=modulation)
    assert 4 not in rows.units.tolist()
    torch.testing.assert_close(rows.dense().ltp, dense.ltp)
    torch.testing.assert_close(rows.dense().ltd, dense.ltd)


def test_triplet_rows_potentiate_only_from_a_units_second_spike_on():
    pre, post = torch.zeros(30, 1, 1), torch.zeros(30, 1, 1)
    pre[5] = 1.0
    post[10] = 1.0  # first post spike: o2 is 0 before it, no potentiation
    first_only = triplet_stdp_rows(pre, post, DIEHL_COOK_STDP)
    assert first_only.ltp.item() == 0.0
    post[14] = 1.0  # second: r1 = e^{-9/20}, o2 = e^{-4/40}
    both = triplet_stdp_rows(pre, post, DIEHL_COOK_STDP)
    expected = 1e-2 * math.exp(-9 / 20) * math.exp(-4 / 40)
    assert both.ltp.item() == pytest.approx(expected, rel=1e-6)  # float32 spikes


def test_triplet_rows_refuse_what_they_do_not_compute():
    spikes = torch.zeros(4, 1, 2)
    with pytest.raises(ConfigError, match="a3_minus"):
        triplet_stdp_rows(spikes, spikes, replace(DIEHL_COOK_STDP, a3_minus=1e-3))
    with pytest.raises(ConfigError, match="nearest"):
        triplet_stdp_rows(spikes, spikes, replace(DIEHL_COOK_STDP, trace="all_to_all"))


# --------------------------------------------------------------------------- order rules, R-STDP


def test_order_stdp_potentiates_inputs_that_fired_first_and_depresses_the_rest():
    w = torch.tensor([[0.5, 0.2, 0.9], [0.5, 0.5, 0.5]])
    pre_before = torch.tensor([[1.0, 0.0, 1.0]])
    post = torch.tensor([[1.0, 0.0]])  # only neuron 0 won
    dw = order_stdp(pre_before, post, w, 0.004, -0.003)
    expected = torch.tensor([[0.004 * 0.25, -0.003 * 0.16, 0.004 * 0.09], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(dw, expected)


def test_order_stdp_stabilizer_spans_its_bounds_or_drops_out():
    w = torch.tensor([[0.5, 0.3, 0.8]])
    pre_before = torch.tensor([[1.0, 0.0, 1.0]])
    post = torch.tensor([[1.0]])
    spanned = order_stdp(pre_before, post, w, 0.01, -0.02, stabilizer=(0.2, 0.8))
    expected = torch.tensor([[0.01 * 0.3 * 0.3, -0.02 * 0.1 * 0.5, 0.0]])
    torch.testing.assert_close(spanned, expected)
    additive = order_stdp(pre_before, post, w, 0.01, -0.02, stabilizer=None)
    torch.testing.assert_close(additive, torch.tensor([[0.01, -0.02, 0.01]]))


def test_rstdp_flips_sign_with_reward():
    w = torch.full((2, 4), 0.5)
    pre_before = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    post = torch.tensor([[1.0, 0.0]])
    rewarded = rstdp(pre_before, post, w, torch.tensor([1.0]))
    punished = rstdp(pre_before, post, w, torch.tensor([-1.0]))
    assert (rewarded[0, :2] > 0).all() and (rewarded[0, 2:] < 0).all()
    assert (punished[0, :2] < 0).all() and (punished[0, 2:] > 0).all()
    assert rstdp(pre_before, post, w, torch.tensor([0.0])).abs().sum() == 0


def test_reward_modulated_pair_stdp_flips_sign_with_reward():
    pre, post = spike_train(20, [2]), spike_train(20, [6])
    p = PairSTDP()
    plus = additive(pair_stdp(pre, post, p, modulation=torch.tensor([1.0]))[0])
    minus = additive(pair_stdp(pre, post, p, modulation=torch.tensor([-1.0]))[0])
    assert plus.item() > 0 and minus.item() == pytest.approx(-plus.item())


# --------------------------------------------------------------------------- probabilistic STDP


def test_nessler_rule_values_and_its_log_probability_fixed_point():
    w = torch.tensor([[-1.0, -2.0]])
    dw = nessler_stdp(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]]), w, lr=0.1)
    torch.testing.assert_close(dw, torch.tensor([[0.1 * (math.e - 1), -0.1]]))
    g = torch.Generator().manual_seed(5)
    p = torch.tensor([0.8, 0.5, 0.2])
    w = torch.full((1, 3), -1.0)
    for _ in range(5000):
        y = (torch.rand(1, 3, generator=g) < p).float()
        w = w + nessler_stdp(y, torch.ones(1, 1), w, lr=0.005)
    torch.testing.assert_close(w[0], p.log(), atol=0.2, rtol=0.0)


# --------------------------------------------------------------------------- views


def test_dense_and_1x1_conv_over_a_1x1_image_give_identical_updates():
    g = torch.Generator().manual_seed(6)
    pre = (torch.rand(30, 5, 7, generator=g) < 0.2).float()
    post = (torch.rand(30, 5, 3, generator=g) < 0.2).float()
    p = PairSTDP(trace="nearest")
    conv = ConvView(kernel_size=1)
    dense, _ = pair_stdp(DenseView().pre_rows(pre), DenseView().post_rows(post), p)
    as_conv, _ = pair_stdp(
        conv.pre_rows(pre.reshape(30, 5, 7, 1, 1)), conv.post_rows(post.reshape(30, 5, 3, 1, 1)), p
    )
    torch.testing.assert_close(additive(dense), additive(as_conv))


def test_conv_update_is_the_dense_update_summed_over_positions():
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(12, 2, 3, 5, 5, generator=g) < 0.2).double()  # [T, B, C, H, W]
    y = (torch.rand(12, 2, 4, 4, 4, generator=g) < 0.1).double()  # 2x2 kernel, stride 1
    p = PairSTDP()
    view = view_of(nn.Conv2d(3, 4, 2))
    window, _ = pair_stdp(view.pre_rows(x), view.post_rows(y), p)
    brute = torch.zeros(4, 3 * 2 * 2, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            patch = x[..., i : i + 2, j : j + 2].reshape(12, 2, -1)
            brute += additive(pair_stdp(patch, y[..., i, j], p)[0])
    torch.testing.assert_close(additive(window), brute)
    assert view.to_weight(additive(window), torch.zeros(4, 3, 2, 2)).shape == (4, 3, 2, 2)


def test_mismatched_activity_is_a_shape_error():
    with pytest.raises(ShapeError):
        pair_stdp(torch.zeros(5, 2, 3), torch.zeros(6, 2, 3), PairSTDP())
    with pytest.raises(ShapeError):
        DenseView().pre_rows(torch.zeros(2, 3))
    with pytest.raises(ConfigError):
        PairSTDP(a_minus=-1.0)
    with pytest.raises(ConfigError):
        view_of(nn.ReLU())


# --------------------------------------------------------------------------- traces


@pytest.mark.parametrize("mode", ["all_to_all", "nearest"])
def test_trace_matches_its_recurrence_and_continues_across_chunks(mode):
    g = torch.Generator().manual_seed(8)
    s = (torch.rand(300, 2, 3, generator=g) < 0.2).double()
    d = math.exp(-1 / 4.0)
    x, expected = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(300):
        x = torch.where(s[t] > 0, 1.0, d * x) if mode == "nearest" else d * x + s[t]
        expected.append(x)
    whole = trace(s, 4.0, mode=mode)
    torch.testing.assert_close(whole, torch.stack(expected))
    first = trace(s[:100], 4.0, mode=mode)
    torch.testing.assert_close(trace(s[100:], 4.0, mode=mode, initial=first[-1]), whole[100:])


def test_box_window_marks_recent_spikes():
    s = torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0]).reshape(8, 1)
    assert box(s, 3).flatten().tolist() == [1, 1, 1, 0, 1, 1, 1, 0]


# --------------------------------------------------------------------------- homeostasis


def test_adaptive_threshold_rises_per_spike_and_slows_firing():
    x = torch.full((200, 1, 1), 3.0)
    plain = run(LIFParams(tau_mem=20.0, v_th=10.0, reset="zero"), x).spikes.sum()
    model = AdaptiveThreshold(LIFParams(tau_mem=20.0, v_th=10.0, reset="zero"), theta_plus=2.0)
    out = run(model, x)
    assert out.spikes.sum() < plain
    assert out.state.theta.item() == pytest.approx(2.0 * out.spikes.sum().item(), rel=1e-4)


def test_adaptive_threshold_composes_with_lateral_inhibition():
    model = LateralInhibition(
        AdaptiveThreshold(LIFParams(tau_mem=20.0, v_th=5.0, reset="zero"), 0.5), strength=50.0
    )
    out = run(model, torch.full((50, 2, 4), 2.0)).spikes
    assert (out.sum(2) <= 4).all() and out.sum() > 0


def test_normalisation_makes_each_neuron_sum_to_the_total():
    w = torch.rand(5, 2, 3, 3)
    sums = normalize_incoming(w, 78.0).reshape(5, -1).sum(1)
    torch.testing.assert_close(sums, torch.full((5,), 78.0))
    with pytest.raises(ConfigError):
        normalize_incoming(w, 0.0)
    assert normalize_incoming(torch.zeros(0, 784), 78.0).shape == (0, 784)  # no neuron learned


# --------------------------------------------------------------------------- competition


def test_conv_k_winners_leaves_at_most_k_distinct_well_separated_winners():
    g = torch.Generator().manual_seed(9)
    spikes = (torch.rand(6, 5, 8, 8, generator=g) < 0.5).float()
    score = torch.rand(6, 5, 8, 8, generator=g)
    for k, radius in [(1, 0), (3, 1), (4, 2), (10, 0)]:
        won = conv_k_winners(spikes, score, k, radius)
        assert (won <= spikes).all()
        for b in range(6):
            c, h, w = won[b].nonzero(as_tuple=True)
            assert len(c) <= k and len(set(c.tolist())) == len(c)  # one per map
            for i in range(len(c)):
                for j in range(i):
                    assert max(abs(h[i] - h[j]), abs(w[i] - w[j])) > radius


def test_conv_k_winners_takes_the_best_scores_first():
    spikes = torch.ones(1, 2, 1, 3)
    score = torch.tensor([[[[0.1, 0.9, 0.2]], [[0.8, 0.3, 0.4]]]])
    won = conv_k_winners(spikes, score, k=2, radius=0)
    assert won[0, 0, 0].tolist() == [0, 1, 0] and won[0, 1, 0].tolist() == [1, 0, 0]


def test_feature_and_position_inhibition_keep_one_winner_each():
    g = torch.Generator().manual_seed(10)
    spikes = (torch.rand(3, 4, 5, 5, generator=g) < 0.6).float()
    score = torch.rand(3, 4, 5, 5, generator=g)
    per_map = feature_inhibition(spikes, score)
    assert (per_map.flatten(2).sum(2) <= 1).all() and (per_map <= spikes).all()
    assert (per_map.flatten(2).sum(2) == spikes.flatten(2).amax(2)).all()
    per_place = position_inhibition(spikes, score)
    assert (per_place.sum(1) <= 1).all() and (per_place.sum(1) == spikes.amax(1)).all()


def test_earliest_first_ranks_time_before_potential():
    times = torch.tensor([2.0, 1.0, 1.0, math.inf]).reshape(1, 4, 1, 1)
    pots = torch.tensor([99.0, 1.0, 2.0, 50.0]).reshape(1, 4, 1, 1)
    order = earliest_first(times, pots).flatten().argsort(descending=True).tolist()
    assert order == [2, 1, 0, 3]


def test_earliest_first_keeps_float32_potentials_one_ulp_apart_at_late_times():
    times = torch.full((1, 2, 1, 1), 14.0)
    low = torch.tensor(300.0)
    pots = torch.stack([low, torch.nextafter(low, torch.tensor(math.inf))]).reshape(1, 2, 1, 1)
    assert int(earliest_first(times, pots).flatten().argmax()) == 1


# --------------------------------------------------------------------------- learner


def test_a_row_sparse_update_changes_and_clips_only_its_rows():
    layer = nn.Linear(4, 6, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.0, 1.5, 24).reshape(6, 4))
    before = layer.weight.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    units = torch.tensor([1, 4])
    dw = torch.tensor([[0.1, -0.2, 0.3, 0.0], [1.0, 1.0, -1.0, 0.0]])
    apply_update(layer.weight, dw, optimizer, bounds=(0.0, 1.0), units=units)
    expected = before.clone()
    expected[units] = (before[units] + dw).clamp(0.0, 1.0)
    torch.testing.assert_close(layer.weight.detach(), expected)
    # rows outside the update are left as they were, even above the bound
    assert float(layer.weight.detach()[5].max()) > 1.0
    assert layer.weight.grad is None


def test_write_row_grad_refuses_rows_that_do_not_fit():
    weight = nn.Parameter(torch.zeros(5, 3))
    with pytest.raises(ShapeError, match="rows"):
        write_row_grad(weight, torch.tensor([0, 1]), torch.zeros(3, 3))
    with pytest.raises(ShapeError, match="rows"):
        write_row_grad(weight, torch.tensor([0, 1]), torch.zeros(2, 4))


def test_write_grad_lets_sgd_with_lr_1_apply_the_update():
    conv = nn.Conv2d(2, 3, 2, bias=False)
    before = conv.weight.detach().clone()
    dw = torch.randn(3, 8)
    optimizer = torch.optim.SGD(conv.parameters(), lr=1.0)
    write_grad(conv.weight, dw)
    optimizer.step()
    torch.testing.assert_close(conv.weight.detach(), before + dw.reshape(3, 2, 2, 2))
    apply_update(conv.weight, torch.full((3, 8), 10.0), optimizer, bounds=(0.0, 1.0))
    assert float(conv.weight.detach().max()) == 1.0
    with pytest.raises(ShapeError):
        write_grad(conv.weight, torch.zeros(5))


# --------------------------------------------------------------------------- a single neuron


SEGMENT = 50  # ms: the length of the pattern and of the segments it may replace


def pattern_in_noise(seconds: float, n: int, generator: torch.Generator):
    """Spikes ``[T, 1, n]`` (1 ms steps) and the pattern onsets, after Masquelier, Guyonneau &
    Thorpe (2008).

    Every afferent fires as an inhomogeneous Poisson process whose rate wanders in 0-90 Hz
    (linear between random knots 25 ms apart) and fires at least once in every 50 ms segment.
    One segment of the first half of the afferents is frozen as the pattern and pasted over a
    quarter of the segments, never two in a row; then 10 Hz of independent noise is added to
    every afferent everywhere, the pattern included. The rates inside and outside the pattern
    are the same: only spike timing gives it away.
    """
    steps, knot, half = int(seconds * 1000), 25, n // 2
    knots = 90.0 * torch.rand(steps // knot + 2, n, generator=generator)
    t = torch.arange(steps)
    frac = (t % knot).float().unsqueeze(1) / knot
    rates = knots[t // knot] * (1 - frac) + knots[t // knot + 1] * frac  # Hz
    spikes = torch.rand(steps, n, generator=generator) < rates / 1000.0
    segments = spikes[: steps // SEGMENT * SEGMENT].view(-1, SEGMENT, n)
    seg, aff = (~segments.any(1)).nonzero(as_tuple=True)  # silent (segment, afferent) pairs
    segments[seg, torch.randint(0, SEGMENT, seg.shape, generator=generator), aff] = True
    source = int(torch.randint(0, steps // SEGMENT, (1,), generator=generator)) * SEGMENT
    pattern = spikes[source : source + SEGMENT, :half].clone()
    onsets, previous = [], False
    for start in range(0, steps - SEGMENT + 1, SEGMENT):
        chosen = not previous and bool(torch.rand(1, generator=generator) < 0.25)
        if chosen:
            spikes[start : start + SEGMENT, :half] = pattern
            onsets.append(start)
        previous = chosen
    spikes |= torch.rand(steps, n, generator=generator) < 10.0 / 1000.0
    return spikes.float().unsqueeze(1), onsets


def detect(spikes, w, neuron, stdp=None, chunk=10):
    """Run ``neuron`` over ``spikes`` in chunks; with ``stdp``, apply additive pair STDP (weights
    clipped to [0, 1]) after every chunk. Returns the output spike times."""
    state, traces, fired = None, None, []
    with torch_threads(1):  # thousands of small operations: threads only synchronise
        for start in range(0, len(spikes), chunk):
            pre = spikes[start : start + chunk]
            out = run(neuron, pre @ w.T, state)
            state = out.state
            if stdp is not None:
                window, traces = pair_stdp(pre, out.spikes, stdp, traces)
                w = (w + additive(window)).clamp(0.0, 1.0)
            fired += (start + out.spikes.flatten().nonzero().flatten()).tolist()
    return fired


def detection(fired: list[int], onsets: list[int], t0: int, t1: int):
    """Hit rate (patterns in [t0, t1) with a spike inside), false alarms (Hz of spikes outside
    the patterns) and mean latency of the first spike after the onset of the hit patterns."""
    shown = [o for o in onsets if t0 <= o < t1]
    window = [t for t in fired if t0 <= t < t1]
    first = [min((t - o for t in window if o <= t < o + SEGMENT), default=None) for o in shown]
    hits = [lat for lat in first if lat is not None]
    inside = sum(1 for t in window if any(o <= t < o + SEGMENT for o in shown))
    false_hz = (len(window) - inside) / ((t1 - t0) / 1000)
    return len(hits) / max(len(shown), 1), false_hz, sum(hits) / max(len(hits), 1)


def test_a_stdp_neuron_finds_a_repeated_pattern_hidden_in_noise():
    """Masquelier, Guyonneau & Thorpe (2008) with 2000 afferents and 30 s of input.

    An SRM neuron (PSP kernel tau_m 10 ms, tau_s 2.5 ms, peak = weight; weights in [0, 1], all
    0.475 at first) with immediate-pair additive STDP, the paper's rule: a+ = 2^-5,
    a- = 0.85 a+, tau+ 16.8 ms, tau- 33.7 ms. Its threshold (600) lets it fire at ~40 Hz
    anywhere at first; its refractory kernel (4x the threshold, 10 ms) caps its rate where
    depression wins for uncorrelated inputs. STDP silences it in the noise, it locks onto the
    pattern, fires once per pattern, and earlier and earlier inside it. With the test's input
    generator and seeds 0-7, all eight runs end with every pattern of the last 5 s hit and at
    most 0.2 Hz of false alarms; seven fire earlier at the end than when they became selective,
    and seed 6 locks on at ~7 ms straight away and stays there (6.4 ms, then 7.1 ms).
    """
    g = torch.Generator().manual_seed(1)
    n, seconds, end = 2000, 30.0, 30_000
    spikes, onsets = pattern_in_noise(seconds, n, g)
    neuron = SRMParams(
        tau_mem=10.0, tau_syn=2.5, tau_ref=10.0, eta=2400.0, v_th=600.0, kernel_steps=60
    )
    a_plus = 2.0**-5
    stdp = PairSTDP(
        a_plus=a_plus, a_minus=0.85 * a_plus, tau_plus=16.8, tau_minus=33.7, trace="immediate"
    )
    fired = detect(spikes, torch.full((1, n), 0.475), neuron, stdp)

    hit_rate, false_hz, late_latency = detection(fired, onsets, end - 5000, end)
    assert hit_rate > 0.9 and false_hz < 1.0
    # selective from the first 2 s without a spike outside the patterns on
    outside = [t for t in fired if not any(o <= t < o + SEGMENT for o in onsets)]
    gaps = zip([0, *(t + 1 for t in outside)], [*outside, end], strict=True)
    selective = next(start for start, stop in gaps if stop - start >= 2000)
    assert selective < end - 5000
    _, _, early_latency = detection(fired, onsets, selective, selective + 3000)
    assert late_latency < early_latency
    # without plasticity the same neuron fires anywhere: it detects nothing
    control = detect(spikes[-5000:], torch.full((1, n), 0.475), neuron)
    assert detection(control, [o - (end - 5000) for o in onsets], 0, 5000)[1] > 10.0


def test_order_rule_rows_are_the_rows_of_the_dense_update_for_the_learning_neurons():
    g = torch.Generator().manual_seed(6)
    w = torch.rand(7, 10, generator=g)
    pre = (torch.rand(3, 10, generator=g) < 0.5).float()
    post = torch.zeros(3, 7)
    post[0, 5] = post[1, 1] = post[2, 5] = 1.0
    reward = torch.tensor([1.0, -1.0, 1.0])
    delta = rstdp_rows(pre, post, w, reward)
    dense = rstdp(pre, post, w, reward)
    assert delta.units.tolist() == [1, 5]
    torch.testing.assert_close(delta.rows, dense[[1, 5]])
    torch.testing.assert_close(delta.dense(), dense)
    assert float(dense[[0, 2, 3, 4, 6]].abs().sum()) == 0.0
    torch.testing.assert_close(order_stdp_rows(pre, post, w).dense(), order_stdp(pre, post, w))
