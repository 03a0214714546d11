"""Gradient-trained recipes: lee2016-fc, lee2016-cnn (surrogate BPTT) and mostafa2017-ttfs.

Smoke runs use the embedded digits data; the N-MNIST path uses the offline subset under
``DEEPSPIKE_DATA`` and is skipped without it.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from deepspike import data, runner, training
from deepspike.errors import ConfigError, InputValueError, ShapeError
from deepspike.recipes import (
    RECIPES,
    common,
    get_recipe,
    lee2016_cnn,
    lee2016_fc,
    mostafa2017_ttfs,
)

GRADIENT_RECIPES = ("lee2016-fc", "lee2016-cnn", "mostafa2017-ttfs")


def nmnist_root() -> str:
    root = os.environ.get("DEEPSPIKE_DATA")
    if not root or not data.where("nmnist", root).is_dir():
        pytest.skip("the N-MNIST subset is not under $DEEPSPIKE_DATA")
    return root


def digits_batch(n=16):
    x, y = data.load("digits", "train")
    return x[:n], y[:n]


@pytest.mark.parametrize("recipe_id", GRADIENT_RECIPES)
def test_recipe_declares_its_paper_and_settings(recipe_id):
    recipe = RECIPES[recipe_id]
    assert recipe.paper.cite and recipe.paper.url
    assert recipe.paper_accuracy("mnist") is not None
    assert {"mnist", "digits"} <= set(recipe.datasets)
    assert set(recipe.smoke) <= set(recipe.defaults) and set(recipe.quick) <= set(recipe.defaults)
    assert recipe.group in ("fully connected", "spiking CNN")


@pytest.mark.parametrize("recipe_id", GRADIENT_RECIPES)
def test_smoke_run_beats_chance_by_far_in_seconds(recipe_id, tmp_path):
    record = runner.train(
        recipe_id, out=tmp_path, dataset="digits", profile="smoke", progress=False
    )
    assert record["accuracy"] >= 85.0, record["accuracy"]
    written = json.loads(Path(tmp_path, "result.json").read_text())
    assert written["recipe"] == recipe_id and written["accuracy"] == record["accuracy"]
    assert written["synops_per_sample"] > 0 and written["ann_macs_per_sample"] > 0
    assert len(written["extra"]["train_loss"]) == written["config"]["epochs"]
    again = runner.evaluate(tmp_path, progress=False)  # rebuilds the model from the checkpoint
    assert again["accuracy"] == pytest.approx(record["accuracy"], abs=5.0)


@pytest.mark.parametrize("module", [lee2016_fc, lee2016_cnn])
@pytest.mark.parametrize("loss", training.OBJECTIVES)
def test_surrogate_models_output_shapes_and_gradients(module, loss):
    recipe = get_recipe(module.RECIPE.id)
    config = recipe.config({"loss": loss, "learn_tau": True}, "smoke")
    torch.manual_seed(0)
    model = module.build(config, (8, 8))
    x, y = digits_batch()
    encode = common.make_encoder("direct", config["timesteps"])
    output = model(encode(x, None))
    assert output.shape == (config["timesteps"], len(x), 10)
    value = training.objective(loss).loss(output, y)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert torch.isfinite(p.grad).all(), name
    first = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    assert first.grad.abs().sum() > 0  # the error reaches the first layer through time


def test_cnn_uses_the_paper_architecture_on_mnist_sized_inputs():
    config = get_recipe("lee2016-cnn").config()
    model = lee2016_cnn.build(config, (28, 28))
    shapes = [tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")]
    assert shapes == [(20, 1, 5, 5), (50, 20, 5, 5), (200, 800), (10, 200)]
    frames = lee2016_cnn.build(config, (2, 34, 34))
    assert [tuple(p.shape) for n, p in frames.named_parameters()][4] == (200, 50 * 5 * 5)
    with pytest.raises(ShapeError, match="padding"):
        lee2016_cnn.build(config, (8, 8))  # 8x8 digits need the padded (smoke/quick) setting


def test_fc_is_784_800_10():
    model = lee2016_fc.build(get_recipe("lee2016-fc").config(), (28, 28))
    shapes = [tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")]
    assert shapes == [(800, 784), (10, 800)]


@pytest.mark.parametrize("recipe_id", GRADIENT_RECIPES)
def test_same_seed_gives_the_same_weights(recipe_id, tmp_path):
    overrides = {"epochs": 1, "n_train": 200, "n_test": 50}

    def weights(out):
        runner.train(
            recipe_id,
            out=tmp_path / out,
            dataset="digits",
            profile="smoke",
            overrides=overrides,
            seed=3,
            progress=False,
        )
        from deepspike.io import load_checkpoint

        return load_checkpoint(tmp_path / out / runner.CHECKPOINT_FILE)[0]

    first, second = weights("a"), weights("b")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_bad_input_shape_raises_shape_error():
    config = get_recipe("lee2016-fc").config(None, "smoke")
    model = lee2016_fc.build(config, (8, 8))
    with pytest.raises(ShapeError):
        model(torch.zeros(4, 2, 9, 9))  # 81 inputs into a 64-input network
    cnn = lee2016_cnn.build(get_recipe("lee2016-cnn").config(None, "smoke"), (8, 8))
    with pytest.raises(ShapeError):
        cnn(torch.zeros(4, 2, 64))  # flat vectors are not images
    ttfs = mostafa2017_ttfs.build(get_recipe("mostafa2017-ttfs").config(None, "smoke"), 64)
    with pytest.raises(ShapeError):
        ttfs(torch.ones(2, 81))


@pytest.mark.parametrize("recipe_id", ["lee2016-fc", "mostafa2017-ttfs"])
def test_nan_input_raises_input_value_error(recipe_id):
    x, y = digits_batch(8)
    x = x.clone()
    x[2, 3, 3] = float("nan")
    config = get_recipe(recipe_id).config(None, "smoke")
    if recipe_id == "lee2016-fc":
        model, encode = lee2016_fc.build(config, (8, 8)), common.make_encoder("direct", 4)
    else:
        model = mostafa2017_ttfs.build(config, 64)
        encode = mostafa2017_ttfs.make_encoder(config)
    with pytest.raises(InputValueError, match="NaN"):
        training.fit(
            model,
            encode,
            x,
            y,
            epochs=1,
            batch_size=4,
            lr=1e-3,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
    with pytest.raises(InputValueError, match="NaN"):
        training.evaluate(model, encode, x, y, batch_size=4, generator=torch.Generator())


def test_unknown_loss_and_encoding_are_config_errors():
    with pytest.raises(ConfigError, match="loss"):
        training.objective("hinge")
    with pytest.raises(ConfigError, match="encoding"):
        common.make_encoder("morse", 4)


def test_random_shift_moves_images_and_keeps_their_mass():
    x = torch.zeros(3, 1, 6, 6)
    x[:, 0, 2:4, 2:4] = 1.0
    shift = common.random_shift(2)
    moved = shift(x, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape
    assert torch.equal(moved.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # room to move: no loss
    assert not torch.equal(moved, x)
    dy, dx = torch.tensor([2, 2]), torch.tensor([3, 2])
    one = common.shift_images(x[:2], dy, dx, 2)
    assert torch.equal(one[1], x[1]) and torch.equal(one[0], torch.roll(x[0], -1, dims=-1))
    assert common.random_shift(0) is None


def test_elastic_distortion_is_identity_without_displacement_and_seeded():
    x = torch.zeros(2, 12, 12)
    x[:, 4:8, 5:7] = 1.0
    still = common.elastic_images(x, torch.zeros(2, 2, 12, 12), alpha=30.0, sigma=2.0)
    assert torch.allclose(still, x, atol=1e-6)
    distort = common.random_elastic(30.0, sigma=2.0)
    a = distort(x, torch.Generator().manual_seed(1))
    b = distort(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, x)
    assert common.random_elastic(0.0) is None
    assert common.augmenter({"augment_shift": 0}) is None


def test_regular_rate_code_is_the_noiseless_rate():
    x = torch.tensor([[0.0, 0.1, 0.5, 1.0]])
    spikes = common.regular_rate(x, 6)
    assert spikes.shape == (6, 1, 4)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes.sum(0).tolist() == [[0.0, 1.0, 3.0, 6.0]]  # round(T x) spikes each
    assert torch.equal(spikes[:, 0, 2], torch.tensor([1.0, 0, 1, 0, 1, 0]))  # evenly spaced


def test_event_frames_are_binary_time_bins():
    ev = [
        {"x": [0, 1, 1], "y": [0, 0, 0], "p": [1, 0, 1], "t": [0, 50, 99]},
        {"x": [2], "y": [3], "p": [1], "t": [10]},
    ]
    frames = common.event_frames(ev, 2)
    assert frames.shape == (2, 2, 2, 34, 34) and frames.dtype == torch.uint8
    assert frames[0, 0, 1, 0, 0] == 1 and frames[0, 1, 0, 0, 1] == 1 and frames[0, 1, 1, 0, 1] == 1
    assert common.frames_encoder(frames).shape == (2, 2, 2, 34, 34)


@pytest.mark.parametrize("recipe_id", ["lee2016-fc", "lee2016-cnn"])
def test_nmnist_path_trains_on_the_subset(recipe_id, tmp_path):
    root = nmnist_root()
    record = runner.train(
        recipe_id,
        out=tmp_path,
        dataset="nmnist",
        data_dir=root,
        profile="smoke",
        overrides={"n_train": 500, "n_test": 100, "epochs": 4, "timesteps": 4},
        progress=False,
    )
    assert record["n_test"] == 100 and record["timesteps"] == 4
    assert "not comparable" in record["extra"]["note"]
    assert record["accuracy"] > 30.0  # chance is 10 %
    assert record["layers"][0]["acs"] > 0 and record["layers"][0]["macs"] == 0  # event input
