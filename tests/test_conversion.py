"""ANN-to-SNN conversion: BN folding, normalisation, spiking layers, convergence over time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepspike import data
from deepspike.conversion import (
    QCFS,
    ConversionConfig,
    RateGatedMaxPool2d,
    SoftLIF,
    activation_scales,
    balance_thresholds,
    build_snn,
    convert,
    encode,
    fold_batchnorm,
    lif_rate,
    parse_ann,
    percentile,
    qcfs,
    simulate,
    soft_lif_rate,
)
from deepspike.conversion.normalise import max_input_current
from deepspike.errors import ConfigError, ShapeError
from deepspike.neurons import Neuron


def randomise_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) * 0.4 - 0.1)


# ---------------------------------------------------------------- BatchNorm folding
def test_batchnorm_folding_is_exact():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 5),
        nn.BatchNorm1d(5),
    )
    randomise_batchnorm(model, g)
    model.eval()
    x = torch.rand(16, 3, 8, 8, generator=g)
    graph = parse_ann(model, x)
    assert [op.kind for op in graph.ops] == ["input", "conv", "act", "flatten", "linear"]
    with torch.no_grad():
        assert torch.allclose(graph(x)["output"], model(x), atol=1e-5, rtol=0)
        folded = fold_batchnorm(model[0], model[1])
        assert torch.allclose(folded(x), model[1](model[0](x)), atol=1e-5, rtol=0)


def test_batchnorm_must_follow_a_weighted_layer():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="must directly follow a Linear or Conv2d"):
        parse_ann(model.eval(), torch.rand(2, 4))


# ---------------------------------------------------------------- errors
def test_unsupported_layer_is_named_with_the_supported_list():
    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match=r"Sigmoid.*supported: Linear, Conv2d"):
        parse_ann(model, torch.rand(2, 4))


def test_a_model_that_fails_on_the_example_is_a_shape_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(ShapeError, match=r"mat1 and mat2.*\[2, 3, 3\]|\[2, 3, 3\].*mat1"):
        parse_ann(model, torch.rand(4, 3, 3))


def test_max_pool_of_a_pre_activation_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())
    graph = parse_ann(model, torch.rand(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="activation before the max-pool"):
        build_snn(graph, {})


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="normalisation"):
        ConversionConfig(normalisation="median")
    with pytest.raises(ConfigError, match="reset"):
        ConversionConfig(reset="none")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="trained scale"):
        convert(model, torch.rand(8, 4), ConversionConfig(normalisation="trained"))


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize(("n", "q"), [(1, 50.0), (10, 99.9), (1001, 99.9), (5000, 37.5)])
def test_percentile_matches_numpy(n, q):
    values = torch.randn(n, generator=torch.Generator().manual_seed(n))
    assert percentile(values, q) == pytest.approx(np.percentile(values.numpy(), q), rel=1e-6)


def test_percentile_normalisation_uses_positive_activations():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(300, 10)
    scales = activation_scales(parse_ann(model, x), x, "percentile", 99.0, batch_size=64)
    with torch.no_grad():
        hidden = model[1](model[0](x)).numpy()
        logits = model(x).numpy()
    assert scales["_1"] == pytest.approx(np.percentile(hidden[hidden > 0], 99.0), rel=1e-5)
    assert scales["output"] == pytest.approx(np.percentile(logits[logits > 0], 99.0), rel=1e-5)
    maxima = activation_scales(parse_ann(model, x), x, "max")
    assert maxima["_1"] == pytest.approx(float(hidden.max()), rel=1e-6)


def test_threshold_balancing_makes_the_largest_input_current_one():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
    model.append(nn.Linear(16, 4))
    x = torch.rand(64, 12)
    config = ConversionConfig(normalisation="threshold-balancing", balance_timesteps=16)
    graph = parse_ann(model, x)
    scales = balance_thresholds(graph, x, config)
    snn = build_snn(graph, scales, config)
    spikes_in = encode(x, 16)
    for layer in ("_1", "_3", "readout"):
        assert max_input_current(snn, layer, spikes_in, 64) == pytest.approx(1.0, rel=1e-5)


# ---------------------------------------------------------------- spiking layers
def test_rate_gated_max_pool_follows_the_fastest_input():
    t = 1000
    rates = torch.tensor([0.2, 0.5, 0.9, 0.1])
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(t, 4, generator=g) < rates).float().reshape(t, 1, 1, 2, 2)
    out = RateGatedMaxPool2d(2)(x)
    assert out.shape == (t, 1, 1, 1, 1)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    fastest = x.reshape(t, 4)[:, 2].sum()
    assert abs(float(out.sum() - fastest)) <= 5  # follows the 0.9 input after a few steps
    assert out.sum() < (x.sum(dim=(-1, -2)) > 0).sum() - 30  # far fewer than an OR
    analog = torch.rand(1, 2, 3, 4, 4).expand(5, 2, 3, 4, 4)
    assert torch.equal(RateGatedMaxPool2d(2)(analog)[0], nn.MaxPool2d(2)(analog[0]))


def test_qcfs_layer_equals_if_neuron_counts_at_t_equal_levels():
    torch.manual_seed(3)
    levels = 8
    act = QCFS(levels=levels, threshold=1.5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), act, nn.Linear(12, 3))
    x = torch.rand(32, 4, 4)
    snn = convert(model, x, ConversionConfig(normalisation="trained"))
    seen = {}
    layer = snn.network.get_submodule("_2")
    handle = layer.register_forward_hook(lambda m, a, out: seen.update(spikes=out))
    with torch.no_grad():
        snn(encode(x, levels))
        expected = act(model[1](model[0](x)))
    handle.remove()
    rate = seen["spikes"].mean(0) * act.trained_scale
    assert torch.allclose(rate, expected, atol=1e-5)
    z = torch.linspace(-1, 3, 50)
    assert torch.allclose(qcfs(z, 2.0, 4), 2.0 * torch.clamp(torch.floor(z * 2 + 0.5), 0, 4) / 4)


def test_soft_lif_approaches_lif_and_lif_neurons_fire_at_that_rate():
    j = torch.linspace(1.2, 4.0, 8)
    assert torch.allclose(soft_lif_rate(j, gamma=1e-4), lif_rate(j), rtol=1e-3)
    assert float(lif_rate(torch.tensor([0.9]))) == 0.0
    act = SoftLIF(tau_rc=20.0, tau_ref=2.0, amplitude=1.0)
    model = nn.Sequential(nn.Linear(1, 8, bias=False), act, nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight.copy_(j.reshape(8, 1))
    dt = 0.25
    snn = convert(model, torch.ones(4, 1), ConversionConfig(normalisation="none", dt=dt))
    seen = {}
    neurons = snn.network.get_submodule("_1")
    handle = neurons.register_forward_hook(lambda m, a, out: seen.update(spikes=out))
    with torch.no_grad():
        snn(encode(torch.ones(1, 1), 4000))
    handle.remove()
    measured = seen["spikes"].sum(0)[0] / (4000 * dt)  # spikes per ms
    assert torch.allclose(measured, lif_rate(j), rtol=0.1)


# ---------------------------------------------------------------- convergence over time
@pytest.fixture(scope="module")
def digits_mlp():
    """A small ReLU MLP trained on the digits for a few seconds, with its data."""
    torch.manual_seed(0)
    x, y = data.load("digits", "train")
    xt, yt = data.load("digits", "test")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        idx = torch.randint(0, len(x), (128,))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model, (x, y), (xt, yt)


@pytest.mark.parametrize(
    "options",
    [
        {"normalisation": "max"},
        {"normalisation": "max", "reset": "zero", "readout": "spikes"},
    ],
)
def test_mlp_rates_approach_ann_activations(digits_mlp, options):
    model, (x, _), (xt, _) = digits_mlp
    snn = convert(model, x, ConversionConfig(**options))
    lam = snn.scales["_2"]
    with torch.no_grad():
        hidden = model[2](model[1](model[0](xt))) / lam
        ann_pred = model(xt).argmax(1)
    errors, agreement = [], 0.0
    for t in (8, 32, 128):
        seen = {}
        handle = snn.network.get_submodule("_2").register_forward_hook(
            lambda m, a, out, seen=seen: seen.update(spikes=out)
        )
        with torch.no_grad():
            out = snn(encode(xt, t))
        handle.remove()
        errors.append(float((seen["spikes"].mean(0) - hidden).abs().mean()))
        agreement = float((snn.logits(out)[-1].argmax(1) == ann_pred).float().mean())
    assert errors[0] > errors[1] > errors[2]
    assert agreement >= 0.98


def test_simulate_curve_matches_the_cost_meter_and_the_ann(digits_mlp):
    model, (x, _), (xt, yt) = digits_mlp
    snn = convert(model, x[:500], ConversionConfig(normalisation="percentile"))
    course = simulate(snn, xt, yt, timesteps=64, batch_size=100, cost_timesteps=16)
    assert len(course.accuracy) == 64 and course.samples == len(xt)
    assert course.synops_at(16) == pytest.approx(course.cost.synops, rel=1e-9)
    assert course.cost.timesteps == 16
    assert all(b >= a for a, b in zip(course.synops, course.synops[1:], strict=False))
    with torch.no_grad():
        ann = 100.0 * float((model(xt).argmax(1) == yt).float().mean())
    assert course.accuracy_at(64) > ann - 3.0
    assert course.first_step_reaching(course.accuracy_at(64)) <= 64


def test_rate_input_converges_too(digits_mlp):
    model, (x, _), (xt, yt) = digits_mlp
    snn = convert(model, x[:500], ConversionConfig(normalisation="percentile"))
    g = torch.Generator().manual_seed(0)
    course = simulate(snn, xt, yt, timesteps=128, input="rate", generator=g)
    assert course.accuracy_at(128) > course.accuracy_at(4) and course.accuracy_at(128) > 85.0


class ResidualNet(nn.Module):
    """A VGG/ResNet-style CIFAR-shaped net: BN, max-pool, a residual block, global avg-pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.down = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(16)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(nn.functional.relu(self.bn0(self.stem(x))))
        r = torch.relu(self.bn1(self.conv1(h)))
        h = torch.relu(self.bn2(self.conv2(r)) + h)  # identity shortcut
        h = torch.relu(self.bn4(self.conv3(h)) + self.bn3(self.down(h)))  # projection shortcut
        return self.fc(self.drop(torch.flatten(self.avg(h), 1)))


def test_residual_cifar_net_logits_approach_the_ann():
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    net = ResidualNet()
    randomise_batchnorm(net, g)
    net.eval()
    x = torch.rand(12, 3, 32, 32, generator=g)
    graph = parse_ann(net, x)
    assert {op.kind for op in graph.ops} == {
        "input", "conv", "act", "maxpool", "add", "avgpool", "flatten", "linear"
    }  # fmt: skip
    with torch.no_grad():
        ann = net(x)
        assert torch.allclose(graph(x)["output"], ann, atol=1e-5)
    snn = convert(net, x, ConversionConfig(normalisation="max"))
    assert any(name.endswith("_to_add") for name, _ in snn.network.named_children())
    errors = []
    with torch.no_grad():
        for t in (16, 64, 256):
            estimate = snn.logits(snn(encode(x, t)))[-1]
            errors.append(float((estimate - ann).abs().mean() / ann.abs().mean()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05
    # per-step operations of strided, padded and 1x1 convolutions match the cost meter's
    course = simulate(snn, x, ann.argmax(1), timesteps=6, cost_timesteps=6, input="rate")
    assert course.synops_at(6) == pytest.approx(course.cost.synops, rel=1e-9)


def test_functional_ops_and_neuron_layers_are_mapped():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 4 * 4, 3)

        def forward(self, x):
            h = nn.functional.max_pool2d(torch.relu(self.conv(x)), 3, 2, 1, 1, True)  # ceil_mode
            h = nn.functional.avg_pool2d(h, 2, 1)
            return self.fc(h.flatten(1))

    model = Functional().eval()
    x = torch.rand(4, 1, 8, 8)
    graph = parse_ann(model, x)
    assert [op.kind for op in graph.ops][2:5] == ["act", "maxpool", "avgpool"]
    with torch.no_grad():
        assert torch.allclose(graph(x)["output"], model(x), atol=1e-6)
    snn = convert(model, x, ConversionConfig(normalisation="max"))
    neurons = [m for m in snn.modules() if isinstance(m, Neuron)]
    assert len(neurons) == 3  # the ReLU, the neurons behind the average pool, the read-out
    assert snn(encode(x, 5)).shape == (5, 4, 3)


def test_synaptic_filter_is_a_unit_gain_exponential_and_sits_before_lif_neurons():
    from deepspike.conversion.spiking import SynapticFilter

    alpha = math.exp(-0.5 / 4.0)
    step = SynapticFilter(tau_syn=4.0, dt=0.5)(torch.ones(30, 2, 3))
    expected = 1.0 - alpha ** torch.arange(1, 31, dtype=torch.float32)  # step response
    assert torch.allclose(step[:, 1, 2], expected, atol=1e-6)
    model = nn.Sequential(nn.Linear(3, 4), SoftLIF(), nn.Linear(4, 2))
    with_filter = convert(
        model, torch.rand(8, 3), ConversionConfig(normalisation="none", tau_syn=4.0)
    )
    plain = convert(model, torch.rand(8, 3), ConversionConfig(normalisation="none"))
    assert sum(isinstance(m, SynapticFilter) for m in with_filter.modules()) == 1
    assert not any(isinstance(m, SynapticFilter) for m in plain.modules())
