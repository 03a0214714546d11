"""The HTML report renders in a real browser (headless Chromium): table and plots present."""

import json
import shutil
import subprocess

import pytest

from deepspike.bench.report import render

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def record(recipe, accuracy, paper, energy, group):
    return {
        "schema": 1,
        "recipe": recipe,
        "group": group,
        "method": "surrogate-gradient BPTT",
        "paper": {"cite": "Paper 2016", "row": "row", "dataset": "mnist", "accuracy": paper},
        "dataset": "mnist",
        "n_train": 60000,
        "n_test": 10000,
        "accuracy": accuracy,
        "timesteps": 10,
        "synops_per_sample": 1e6,
        "ann_macs_per_sample": 2e6,
        "spikes_per_neuron": 0.5,
        "params": 1000,
        "energy_uj_per_sample": {"cmos45_float": energy, "cmos45_float_ann": 9.2},
        "local_learning": False,
        "train_seconds": 60.0,
        "threads": 2,
        "device": "cpu",
        "seed": 0,
        "command": f"deepspike train {recipe}",
        "git_commit": "abc",
        "created": "2026-01-01T00:00:00Z",
        "layers": [{"name": "1", "kind": "linear", "acs": 1e6, "macs": 0.0}],
        "extra": {"raster": {"2": [[0, 1], [3, 2]]}},
    }


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")
def test_report_renders_table_and_plots_in_headless_chromium(tmp_path):
    for name, acc, paper, energy, group in [
        ("a-fc", 98.0, 98.5, 1.0, "fully connected"),
        ("b-cnn", 99.4, 99.3, 3.0, "spiking CNN"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(
            json.dumps(record(name, acc, paper, energy, group))
        )
    page = render(tmp_path)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert '<table id="comparison">' in dom
    assert "a-fc" in dom and "b-cnn" in dom and "⚠" in dom
    assert dom.count('class="plot"') >= 4  # energy, time steps, synops per layer, rasters
    assert 'data-images-decoded="true"' in dom
