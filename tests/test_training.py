"""Training loops: losses on spike outputs, input validation and determinism."""

import pytest
import torch

from deepspike import training
from deepspike.errors import ConfigError, InputValueError
from deepspike.layers import Flatten, Linear
from deepspike.neurons import LIFParams, Neuron


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(Flatten(), Linear(6, 3), Neuron(LIFParams()))


def direct(x, generator):
    return x.unsqueeze(0).expand(8, *x.shape)


def test_count_cross_entropy_is_cross_entropy_of_summed_spikes():
    out = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # T=2, B=1, C=2: counts [2, 1]
    expected = -torch.log_softmax(torch.tensor([2.0, 1.0]), 0)[0]
    assert torch.isclose(training.count_cross_entropy(out, torch.tensor([0])), expected)


def test_membrane_cross_entropy_reduces_over_time():
    v = torch.tensor([[[0.0, 3.0]], [[2.0, 1.0]]])
    label = torch.tensor([1])
    by_max = -torch.log_softmax(torch.tensor([2.0, 3.0]), 0)[1]
    by_mean = -torch.log_softmax(torch.tensor([1.0, 2.0]), 0)[1]
    assert torch.isclose(training.membrane_cross_entropy(v, label, "max"), by_max)
    assert torch.isclose(training.membrane_cross_entropy(v, label, "mean"), by_mean)
    with pytest.raises(ConfigError):
        training.membrane_cross_entropy(v, label, "median")


def test_count_mse_targets_rates():
    out = torch.zeros(10, 1, 2)
    out[:8, 0, 1] = 1.0  # class 1 fires 8 of 10 steps: exactly its target
    loss = training.count_mse(out, torch.tensor([1]), on_rate=0.8, off_rate=0.1)
    assert torch.isclose(loss, torch.tensor(0.5 * 1.0**2))  # class 0: count 0 vs target 1


def test_fit_rejects_nan_input():
    x = torch.rand(8, 6)
    x[3, 2] = float("nan")
    with pytest.raises(InputValueError, match="NaN"):
        training.fit(
            tiny_net(),
            direct,
            x,
            torch.zeros(8, dtype=torch.long),
            epochs=1,
            batch_size=4,
            lr=1e-2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )


def test_same_seed_gives_the_same_weights():
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))

    def train_once():
        net = tiny_net(0)
        training.fit(
            net,
            direct,
            x,
            y,
            epochs=2,
            batch_size=4,
            lr=1e-2,
            generator=torch.Generator().manual_seed(7),
            progress=False,
        )
        return net[1].weight.detach().clone()

    assert torch.equal(train_once(), train_once())


def test_training_reduces_the_loss_on_a_separable_problem():
    torch.manual_seed(0)
    x = torch.rand(64, 6)
    y = (x[:, 0] > x[:, 1]).long()
    net = tiny_net(0)
    history = training.fit(
        net,
        direct,
        x,
        y,
        epochs=30,
        batch_size=16,
        lr=5e-2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert history.loss[-1] < history.loss[0]
    assert history.train_accuracy[-1] > 90.0


def separable(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] > x[:, 1]).long()


def quiet_fit(net, x, y, **kw):
    settings = {"epochs": 1, "batch_size": 8, "lr": 1e-2, "progress": False}
    settings.update(kw)
    return training.fit(net, direct, x, y, generator=torch.Generator().manual_seed(0), **settings)


def test_validation_split_is_seeded_and_disjoint():
    x = torch.arange(20.0).unsqueeze(1)
    y = torch.arange(20)
    (_, yt), (_, yv) = training.split_validation(x, y, 0.25, seed=4)
    assert len(yv) == 5 and len(yt) == 15
    assert set(yt.tolist()).isdisjoint(yv.tolist())
    assert torch.equal(training.split_validation(x, y, 0.25, seed=4)[1][1], yv)
    assert not torch.equal(training.split_validation(x, y, 0.25, seed=5)[1][1], yv)
    assert training.split_validation(x, y, 0.0, seed=4)[1] is None
    with pytest.raises(ConfigError):
        training.split_validation(x, y, 1.0, seed=4)


def test_early_stopping_restores_the_best_validation_weights():
    x, y = separable(96)
    net = tiny_net(0)
    history = quiet_fit(net, x, y, epochs=40, lr=0.3, val_fraction=0.25, patience=3)
    assert history.val_accuracy and history.best_epoch is not None
    assert history.stopped_early == (len(history.loss) < 40)
    (_, _), (xv, yv) = training.split_validation(x, y, 0.25, seed=0)
    final = training.accuracy(net, direct, xv, yv, batch_size=8, generator=torch.Generator())
    assert final == pytest.approx(max(history.val_accuracy))


def test_schedules_set_the_learning_rate():
    x, y = separable(32)
    step = quiet_fit(tiny_net(), x, y, epochs=4, schedule="step", step_epochs=2, gamma=0.5)
    assert step.lr == pytest.approx([1e-2, 5e-3, 5e-3, 2.5e-3])
    cosine = quiet_fit(tiny_net(), x, y, epochs=4, schedule="cosine")
    assert cosine.lr[-1] == pytest.approx(0.0, abs=1e-12) and cosine.lr[0] < 1e-2
    with pytest.raises(ConfigError, match="schedule"):
        quiet_fit(tiny_net(), x, y, schedule="exponential")
    with pytest.raises(ConfigError, match="optimizer"):
        quiet_fit(tiny_net(), x, y, optimizer="lbfgs")


def test_gradient_clipping_bounds_the_step():
    x, y = separable(8)
    net = tiny_net(0)
    before = net[1].weight.detach().clone()
    quiet_fit(
        net,
        x,
        y,
        batch_size=8,
        lr=1.0,
        optimizer="sgd",
        momentum=0.0,
        grad_clip=1e-3,
        schedule="constant",
    )
    assert 0 < (net[1].weight - before).norm() <= 1e-3 + 1e-7


def test_regularizer_enters_the_loss():
    x, y = separable(32)
    plain, shrunk = tiny_net(0), tiny_net(0)
    quiet_fit(plain, x, y, epochs=3, optimizer="sgd", schedule="constant")
    quiet_fit(
        shrunk,
        x,
        y,
        epochs=3,
        optimizer="sgd",
        schedule="constant",
        regularizer=lambda m: 10.0 * m[1].weight.pow(2).sum(),
    )
    assert shrunk[1].weight.norm() < 0.5 * plain[1].weight.norm()


def test_augmentation_runs_on_training_batches_only():
    x, y = separable(32)
    calls = []

    def augment(batch, generator):
        calls.append(len(batch))
        return batch

    quiet_fit(tiny_net(), x, y, epochs=2, val_fraction=0.25, augment=augment)
    assert sum(calls) == 2 * 24  # the 8 validation samples are never augmented


def test_membrane_objective_decides_by_the_same_reduction():
    v = torch.tensor([[[0.0, 3.0]], [[2.0, -2.0]]])  # max picks class 1, mean picks class 0
    assert training.objective("membrane_max").predict(v).item() == 1
    assert training.objective("membrane_mean").predict(v).item() == 0
    assert training.objective("count_ce").predict(torch.ones(3, 1, 2)).item() == 0
