"""The conversion recipes: smoke runs on the digits, result fields, the ops figure."""

from __future__ import annotations

import json

import pytest
import torch

from deepspike import runner
from deepspike.recipes import RECIPES
from deepspike.recipes._conversion_common import random_shift, report_steps
from deepspike.recipes.neil2016_ops import curve_steps, render_ops_figure

CONVERSION_RECIPES = (
    "diehl2015-conversion-fc",
    "diehl2015-conversion-cnn",
    "rueckauer2017-conversion",
    "hunsberger2015-softlif",
    "neil2016-ops",
)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Each conversion recipe's smoke run on the digits (run once for the module)."""
    out = tmp_path_factory.mktemp("conversion")
    for rid in CONVERSION_RECIPES:
        runner.train(rid, out=out / rid, dataset="digits", profile="smoke", progress=False)
    return out


def record_of(runs, recipe_id: str) -> dict:
    return json.loads((runs / recipe_id / "result.json").read_text())


@pytest.mark.parametrize("recipe_id", CONVERSION_RECIPES)
def test_recipe_declares_paper_and_profiles(recipe_id):
    recipe = RECIPES[recipe_id]
    assert recipe.paper_accuracy("mnist") is not None
    assert {"mnist", "digits"} <= set(recipe.datasets)
    assert (
        recipe.config(None, "smoke")["timesteps"] <= recipe.config(None, "smoke")["max_timesteps"]
    )


@pytest.mark.parametrize("recipe_id", CONVERSION_RECIPES)
def test_smoke_run_beats_chance_clearly_and_reports_the_curves(smoke_runs, recipe_id):
    record = record_of(smoke_runs, recipe_id)
    extra = record["extra"]
    assert record["accuracy"] > 70.0  # chance is 10 %
    assert extra["ann_accuracy"] > 70.0
    t = record["timesteps"]
    assert extra["snn_accuracy_vs_T"][str(t)] == pytest.approx(record["accuracy"], abs=1e-3)
    assert extra["synops_vs_T"][str(t)] == pytest.approx(record["synops_per_sample"], rel=1e-6)
    assert record["ann_macs_per_sample"] > 0 and record["synops_per_sample"] > 0
    first = extra["first_T_within_0.1pct_of_ANN"]
    assert first is None or 1 <= first <= extra["max_timesteps"]
    assert extra["techniques"]


def test_ops_sweep_data_and_figure(smoke_runs, tmp_path):
    extra = record_of(smoke_runs, "neil2016-ops")["extra"]
    figure = extra["ops_figure"]
    assert len(figure["settings"]) == 2
    for setting in figure["settings"]:
        assert len(setting["synops"]) == len(setting["accuracy"]) == len(setting["timesteps"])
        assert setting["synops"] == sorted(setting["synops"])
    written = smoke_runs / "neil2016-ops" / "ops_figure.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn into the run directory
    png = render_ops_figure(extra, tmp_path / "fig.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(png.with_suffix(".json").read_text())["settings"][0]["label"]


def test_evaluate_reconverts_the_checkpoint(smoke_runs):
    record = record_of(smoke_runs, "rueckauer2017-conversion")
    again = runner.evaluate(smoke_runs / "rueckauer2017-conversion", progress=False)
    assert again["accuracy"] == pytest.approx(record["accuracy"], abs=3.0)


def test_helpers():
    assert report_steps(100, 24) == [1, 2, 4, 8, 16, 24, 32, 64, 100]
    steps = curve_steps(64)
    assert steps[0] == 1 and steps[-1] == 64 and steps == sorted(set(steps))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, 6, 6)
    shifted = random_shift(x, 2, g)
    assert shifted.shape == x.shape
    assert torch.equal(random_shift(x, 0, g), x)
    one = torch.zeros(1, 1, 5, 5)
    one[0, 0, 2, 2] = 1.0
    assert random_shift(one, 1, g).sum() == 1.0  # a centred pixel stays in the frame
