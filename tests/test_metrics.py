"""Cost metrics: every count below is worked out by hand on a tiny network."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deepspike.errors import ConfigError, ShapeError
from deepspike.layers import Conv2d, Flatten, Linear, MaxPool2d, RecurrentDense
from deepspike.metrics import (
    HARDWARE_PROFILES,
    CostMeter,
    CostReport,
    HardwareProfile,
    LayerCost,
    ann_energy_uj,
    build_report,
    conv2d_synops,
    conv2d_synops_bruteforce,
    energy_table,
    energy_uj,
    is_binary,
    measure,
)
from deepspike.neurons import IFParams, LIFParams, Neuron


def dense_4_3() -> Linear:
    torch.manual_seed(0)
    return Linear(4, 3)


# --------------------------------------------------------------------------- (a), (b) dense


def test_dense_binary_input_counts_acs():
    # T=2, B=1, 4 inputs; events: t0 -> inputs 0 and 2, t1 -> input 3: 3 events in all.
    x = torch.tensor([[[1.0, 0.0, 1.0, 0.0]], [[0.0, 0.0, 0.0, 1.0]]])
    report = measure(dense_4_3(), x)
    (rec,) = report.layers
    assert rec.kind == "linear"
    assert rec.input_events == 3
    assert rec.acs == 3 * 3  # each event reaches the 3 outputs
    assert rec.macs == 0
    assert rec.ann_macs == 4 * 3  # once per inference, not per step
    assert report.synops == 9 and report.ann_macs == 12
    assert report.timesteps == 2 and report.samples == 1


def test_dense_non_binary_input_counts_macs():
    # 3 non-zero values (0.5, 2.0, -1.0), none of them a spike.
    x = torch.tensor([[[0.5, 0.0, 2.0, 0.0]], [[0.0, 0.0, 0.0, -1.0]]])
    report = measure(dense_4_3(), x)
    (rec,) = report.layers
    assert rec.input_events == 3
    assert rec.macs == 3 * 3
    assert rec.acs == 0
    assert report.synops == 9 and report.ann_macs == 12


def test_signed_unit_events_are_accumulates():
    from deepspike.metrics import is_accumulate_only

    assert is_accumulate_only(torch.tensor([0.0, 1.0, -1.0]))
    assert not is_accumulate_only(torch.tensor([0.0, -0.5]))
    layer = Linear(3, 4, bias=False)
    with CostMeter(layer) as meter:
        layer(torch.tensor([[[1.0, -1.0, 0.0]]]))
    (rec,) = meter.report(samples=1).layers
    assert rec.acs == 2 * 4 and rec.macs == 0


def test_is_binary():
    assert is_binary(torch.tensor([0.0, 1.0, 1.0]))
    assert is_binary(torch.tensor([True, False]))
    assert not is_binary(torch.tensor([0.0, 0.5]))
    assert not is_binary(torch.tensor([0.0, 2.0]))


# --------------------------------------------------------------------------- (c) convolution


def conv_1_2(**kwargs) -> Conv2d:
    torch.manual_seed(0)
    return Conv2d(1, 2, 3, **kwargs)


def one_hot_frame(*positions: tuple[int, int], size: int = 4) -> torch.Tensor:
    """A [T=1, B=1, C=1, size, size] spike frame with events at ``positions``."""
    x = torch.zeros(1, 1, 1, size, size)
    for r, c in positions:
        x[0, 0, 0, r, c] = 1.0
    return x


def test_conv_stride1_pad0_corner_and_middle():
    # 4x4 input, 3x3 kernel, stride 1, no padding -> 2x2 output; output (oy, ox) reads input
    # rows oy..oy+2 and columns ox..ox+2.
    # corner (0, 0): only output (0, 0) reads it          -> 1 position  x 2 channels = 2
    # middle (1, 1): rows 0..1 and columns 0..1 read it    -> 4 positions x 2 channels = 8
    layer = conv_1_2()
    assert conv2d_synops(one_hot_frame((0, 0)), 2, 3) == 2
    assert conv2d_synops(one_hot_frame((1, 1)), 2, 3) == 8
    report = measure(layer, one_hot_frame((0, 0), (1, 1)))
    (rec,) = report.layers
    assert rec.kind == "conv2d"
    assert rec.input_events == 2
    assert rec.acs == 2 + 8
    assert rec.macs == 0
    # ANN: H'W' C_out (C_in/g) kh kw = 2*2 * 2 * 1 * 3*3 = 72
    assert rec.ann_macs == 72


def test_conv_stride2_pad1():
    # 4x4 input padded by 1, 3x3 kernel, stride 2 -> (4 + 2 - 3)//2 + 1 = 2x2 output.
    # Output row oy reads input rows 2*oy-1 .. 2*oy+1: oy=0 -> {-1, 0, 1}, oy=1 -> {1, 2, 3};
    # the same for columns.
    # (0, 0): row 0 only in oy=0, column 0 only in ox=0 -> 1 position  x 2 = 2
    # (1, 1): row 1 in oy=0 and oy=1, same for columns  -> 4 positions x 2 = 8
    # (3, 3): row 3 only in oy=1, column 3 only in ox=1 -> 1 position  x 2 = 2
    # (2, 0): row 2 only in oy=1, column 0 only in ox=0 -> 1 position  x 2 = 2
    layer = conv_1_2(stride=2, padding=1)
    x = one_hot_frame((0, 0), (1, 1), (3, 3), (2, 0))
    report = measure(layer, x)
    (rec,) = report.layers
    assert rec.input_events == 4
    assert rec.acs == 2 + 8 + 2 + 2
    assert rec.ann_macs == 2 * 2 * 2 * 1 * 9
    assert conv2d_synops_bruteforce(x, 2, 3, stride=2, padding=1) == 14


def test_conv_non_binary_counts_macs():
    x = one_hot_frame((0, 0), (1, 1)) * 0.5
    (rec,) = measure(conv_1_2(), x).layers
    assert rec.macs == 10 and rec.acs == 0


def test_conv_circular_padding_every_element_reaches_nine_positions():
    # circular padding 1, 3x3 kernel, stride 1: the input is a torus, the output is 4x4 and each
    # input element is read by 9 output positions -> fan-out 9 x 2 channels = 18.
    torch.manual_seed(0)
    layer = Conv2d(1, 2, 3, padding=1, padding_mode="circular")
    (rec,) = measure(layer, one_hot_frame((0, 0))).layers
    assert rec.acs == 18


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "groups"),
    [
        (1, 2, 3, 1, 0, 1, 1),
        (1, 2, 3, 2, 1, 1, 1),
        (2, 4, 3, 1, 1, 2, 2),
        (4, 4, (2, 3), (2, 1), (0, 2), 1, 4),
        (3, 6, 5, 3, 2, (1, 2), 3),
    ],
)
def test_conv_counting_equals_bruteforce(c_in, c_out, k, stride, padding, dilation, groups):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 3, c_in, 7, 6, generator=gen) < 0.3).float()
    fast = conv2d_synops(x, c_out, k, stride, padding, dilation, groups)
    assert fast == conv2d_synops_bruteforce(x, c_out, k, stride, padding, dilation, groups)
    # and the meter uses the same count for a deepspike Conv2d
    layer = Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (rec,) = measure(layer, x).layers
    assert rec.acs == fast / 3  # B = 3 samples


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_conv_counting_property(k, stride, padding, dilation, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, 2, 6, 5, generator=gen) < 0.4).float()
    if (6 + 2 * padding - dilation * (k - 1)) < 1 or (5 + 2 * padding - dilation * (k - 1)) < 1:
        return
    fast = conv2d_synops(x, 2, k, stride, padding, dilation, 2)
    assert fast == conv2d_synops_bruteforce(x, 2, k, stride, padding, dilation, 2)


# --------------------------------------------------------------------------- (d) neurons


def test_neuron_counts_on_forced_input():
    # IF neurons, threshold 1, reset by subtraction; T=4, B=1, 3 neurons.
    # neuron 0: input 2.0 every step -> v = 2, 2, 2, 2 after resets -> spikes at every step
    # neuron 1: input 0.6 -> v 0.6, 1.2 (spike, ->0.2), 0.8, 1.4 (spike) -> spikes at t1, t3
    # neuron 2: input 0 -> never
    x = torch.tensor([[2.0, 0.6, 0.0]]).expand(4, 1, 3).contiguous()
    expected = torch.tensor([[[1.0, 0, 0]], [[1, 1, 0]], [[1, 0, 0]], [[1, 1, 0]]])
    neuron = Neuron(IFParams(v_th=1.0))
    assert torch.equal(neuron(x), expected)
    (rec,) = measure(neuron, x).layers
    assert rec.kind == "neuron"
    assert rec.n_neurons == 3
    assert rec.neuron_updates == 3 * 4
    assert rec.spikes == 6
    assert rec.spikes_per_neuron == 2.0
    assert rec.sparsity == pytest.approx(1 - 6 / 12)
    assert rec.acs == rec.macs == rec.ann_macs == 0


def test_membrane_readout_counts_updates_but_no_spikes():
    model = nn.Sequential(Neuron(IFParams()), Neuron(LIFParams(), output="membrane"))
    x = torch.tensor([[2.0, 0.6, 0.0]]).expand(4, 1, 3).contiguous()
    report = measure(model, x)
    spiking, readout = report.layers
    assert readout.spikes is None and readout.sparsity is None
    assert readout.neuron_updates == 12
    assert report.neuron_updates == 24
    # totals cover the spiking layer only
    assert report.spikes_per_neuron == 2.0
    assert report.sparsity == pytest.approx(0.5)
    assert spiking.spikes == 6


def test_recurrent_dense_counts_feedforward_and_recurrent():
    torch.manual_seed(0)
    layer = RecurrentDense(2, 3, IFParams(v_th=0.05))
    x = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]]])  # 4 events, T=3, B=1
    y = layer(x)
    fed_back = int((y[:-1] != 0).sum())  # spikes of steps 0..T-2
    assert fed_back > 0
    report = measure(layer, x)
    assert [r.name for r in report.layers] == ["RecurrentDense"]  # inner nn.Linear not counted
    (rec,) = report.layers
    assert rec.kind == "recurrent"
    assert rec.input_events == 4 + fed_back
    assert rec.acs == 4 * 3 + fed_back * 3
    assert rec.macs == 0
    assert rec.ann_macs == 2 * 3 + 3 * 3
    assert rec.neuron_updates == 3 * 3 and rec.n_neurons == 3
    assert rec.spikes == int((y != 0).sum())


# --------------------------------------------------------------------------- (e) averaging


def test_per_sample_average_over_batches_of_different_size():
    layer = dense_4_3()
    a = torch.zeros(2, 1, 4)  # B=1 with 2 events
    a[0, 0, 0] = a[1, 0, 3] = 1.0
    b = torch.zeros(2, 3, 4)  # B=3 with 10 events
    b.view(-1)[:10] = 1.0
    with CostMeter(layer) as meter:
        layer(a)
        layer(b)
    report = meter.report()
    assert report.samples == 4
    (rec,) = report.layers
    assert rec.input_events == (2 + 10) / 4  # not the mean of per-batch means (2 + 10/3) / 2
    assert rec.acs == 12 * 3 / 4
    assert rec.ann_macs == 12
    # measure() over a list of (input, label) batches gives the same
    again = measure(layer, [(a, 0), (b, 1)])
    assert again.layers == report.layers


def test_plain_torch_layers_on_folded_time():
    class Folded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t, b = x.shape[:2]
            return self.fc(x.reshape(t * b, -1)).reshape(t, b, -1)

    x = torch.zeros(2, 1, 4)
    x[0, 0, 1] = x[1, 0, 2] = 1.0
    rec = measure(Folded(), x, plain_timesteps=2).layer("fc")
    assert rec.acs == 2 * 3 and rec.ann_macs == 12
    # without being told T, each of the T*B rows is taken for a sample of its own
    assert measure(Folded(), x).layer("fc").ann_macs == 24
    # a plain [B, in] model
    static = nn.Sequential(nn.Linear(4, 3))
    rep = measure(
        static, torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]), time_major=False
    )
    assert rep.samples == 2 and rep.timesteps == 1
    assert rep.acs == 3 * 3 / 2 and rep.ann_macs == 12


def test_report_without_samples_raises():
    with CostMeter(dense_4_3()) as meter:
        pass
    with pytest.raises(ConfigError):
        meter.report()


def test_time_major_input_needs_two_axes():
    with pytest.raises(ShapeError):
        measure(nn.Sequential(nn.Linear(4, 3)), torch.zeros(4))


# --------------------------------------------------------------------------- (f) energy


def hand_report() -> CostReport:
    layers = [
        LayerCost("fc", "linear", input_events=4, acs=9, macs=3, ann_macs=12),
        LayerCost("lif", "neuron", neuron_updates=12, spikes=3, n_neurons=3),
    ]
    return build_report(layers, timesteps=4, samples=1, params=15, memory_bytes=60)


def test_energy_arithmetic():
    r = hand_report()
    assert r.synops == 12 and r.neuron_updates == 12
    # 45 nm float: 9 AC x 0.9 pJ + 3 MAC x 4.6 pJ = 8.1 + 13.8 = 21.9 pJ = 21.9e-6 uJ
    assert energy_uj(r, "cmos45_float") == pytest.approx(21.9e-6)
    # 45 nm int: 9 x 0.1 + 3 x 3.2 = 0.9 + 9.6 = 10.5 pJ
    assert energy_uj(r, "cmos45_int") == pytest.approx(10.5e-6)
    # ANN: 12 MAC x 4.6 pJ = 55.2 pJ
    assert ann_energy_uj(r, "cmos45_float") == pytest.approx(55.2e-6)
    # Loihi: 12 synops x 23.6 + 12 updates x 52 = 283.2 + 624 = 907.2 pJ
    assert energy_uj(r, "loihi") == pytest.approx(907.2e-6)
    # TrueNorth: 12 synops x 26 = 312 pJ
    assert energy_uj(r, "truenorth") == pytest.approx(312e-6)
    table = energy_table(r)
    assert table == pytest.approx(
        {
            "cmos45_float": 21.9e-6,
            "cmos45_float_ann": 55.2e-6,
            "cmos45_int": 10.5e-6,
            "cmos45_int_ann": 38.4e-6,  # 12 x 3.2
            "loihi": 907.2e-6,
            "truenorth": 312e-6,
        }
    )


def test_profiles_are_read_only_and_cited():
    with pytest.raises(TypeError):
        HARDWARE_PROFILES["mine"] = HARDWARE_PROFILES["loihi"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        HARDWARE_PROFILES["loihi"].synop_pj = 1.0  # type: ignore[misc]
    p = HARDWARE_PROFILES
    assert (p["cmos45_float"].ac_pj, p["cmos45_float"].mac_pj) == (0.9, 4.6)
    assert (p["cmos45_int"].ac_pj, p["cmos45_int"].mac_pj) == (0.1, 3.2)
    assert (p["loihi"].synop_pj, p["loihi"].neuron_update_pj) == (23.6, 52.0)
    assert p["truenorth"].synop_pj == 26.0
    assert "Horowitz" in p["cmos45_int"].source and "ISSCC) 2014" in p["cmos45_int"].source
    assert "Davies" in p["loihi"].source and "IEEE Micro" in p["loihi"].source
    assert "Merolla" in p["truenorth"].source and "Science" in p["truenorth"].source


def test_energy_errors():
    r = hand_report()
    with pytest.raises(ConfigError):
        ann_energy_uj(r, "loihi")
    with pytest.raises(ConfigError):
        energy_uj(r, "gpu")
    with pytest.raises(ConfigError):
        HardwareProfile("bad", "no numbers", "none")


# --------------------------------------------------------------------------- (g) hooks


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_removed_after_the_context():
    model = small_net()
    assert all_hooks(model) == 0
    x = spikes(2, 1)
    with CostMeter(model) as meter:
        assert all_hooks(model) > 0
        model(x)
    assert all_hooks(model) == 0
    before = meter.report()
    model(x)  # not counted any more
    assert meter.report() == before
    with pytest.raises(RuntimeError), CostMeter(model):
        assert all_hooks(model) > 0
        raise RuntimeError("boom")
    assert all_hooks(model) == 0


def test_measure_restores_training_mode():
    model = small_net().train()
    measure(model, spikes(2, 1))
    assert all(m.training for m in model.modules())
    assert all_hooks(model) == 0


# --------------------------------------------------------------------------- (h) a network


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        Conv2d(1, 2, 3),  # [T,B,1,6,6] -> [T,B,2,4,4]
        Neuron(IFParams(v_th=1.0)),
        MaxPool2d(2),  # -> [T,B,2,2,2]
        Flatten(),  # -> [T,B,8]
        Linear(8, 3),
        Neuron(IFParams(v_th=1.0)),
    )
    with torch.no_grad():  # excitatory weights, so that both neuron layers spike
        net[0].weight.uniform_(0.0, 0.6)
        net[4].weight.uniform_(0.0, 0.2)
    return net


def spikes(t: int, b: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return (torch.rand(t, b, 1, 6, 6, generator=gen) < 0.4).float()


def test_small_network_report_is_consistent():
    model = small_net()
    x = spikes(3, 2)
    report = measure(model, x)

    assert [(r.name, r.kind) for r in report.layers] == [
        ("0", "conv2d"),
        ("1", "neuron"),
        ("4", "linear"),
        ("5", "neuron"),
    ]
    conv, n1, fc, n2 = report.layers
    # the same numbers from the intermediate tensors
    with torch.no_grad():
        s1 = model[1](model[0](x))
        pooled = model[3](model[2](s1))
        s2 = model[5](model[4](pooled))
    b = 2
    assert conv.input_events == int(x.sum()) / b
    assert conv.acs == conv2d_synops(x, 2, 3) / b
    assert fc.input_events == int(pooled.sum()) / b
    assert fc.acs == int(pooled.sum()) * 3 / b
    assert conv.macs == fc.macs == 0  # spikes in, accumulates only
    assert conv.ann_macs == 4 * 4 * 2 * 1 * 9 and fc.ann_macs == 8 * 3
    assert (n1.n_neurons, n2.n_neurons) == (32, 3)
    assert n1.neuron_updates == 3 * 32 and n2.neuron_updates == 3 * 3
    assert n1.spikes == int(s1.sum()) / b and n2.spikes == int(s2.sum()) / b
    assert 0 < n1.spikes < 96 and 0 < n2.spikes < 9 and fc.acs > 0  # a non-trivial case

    assert report.acs == conv.acs + fc.acs
    assert report.synops == report.acs + report.macs
    assert report.ann_macs == 288 + 24
    assert report.neuron_updates == 96 + 9
    total_spikes = int(s1.sum() + s2.sum()) / b
    assert report.spikes_per_neuron == pytest.approx(total_spikes / 35)
    assert report.sparsity == pytest.approx(1 - total_spikes / 105)
    assert report.timesteps == 3 and report.samples == 2
    assert report.params == (2 * 9 + 2) + (8 * 3 + 3)
    assert report.memory_bytes == report.params * 4
    # the largest module call is the conv: 36 floats in and 2*4*4 = 32 out per step, 3 steps
    # (the first neuron layer has 32 in and 32 out)
    assert report.peak_activation_bytes == 3 * (36 + 32) * 4

    d = json.loads(json.dumps(report.to_dict()))
    assert d["synops"] == report.synops
    assert [layer["name"] for layer in d["layers"]] == ["0", "1", "4", "5"]
    assert d["layers"][1]["spikes_per_neuron"] == pytest.approx(n1.spikes / 32)
    assert set(energy_table(report)) >= {"cmos45_float", "cmos45_float_ann", "loihi", "truenorth"}
    assert energy_table(report)["cmos45_float_ann"] == pytest.approx(312 * 4.6e-6)


def test_spike_raster_lists_the_spikes_of_each_spiking_layer():
    from deepspike.metrics import spike_raster

    net = torch.nn.Sequential(Linear(2, 2, bias=False), Neuron(IFParams()))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    x = torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]], [[1.0, 0.0]]])  # [T=3, B=1, 2]
    # neuron 0 gets 1, 0, 1 -> fires at t=0 and t=2; neuron 1 gets 0.5, 0.5, 0 -> fires at t=1
    assert spike_raster(net, x) == {"1": [[0, 0], [1, 1], [2, 0]]}
