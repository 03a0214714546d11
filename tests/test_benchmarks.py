"""The building blocks of benchmarks/speed.py: models, timing, memory, summary, missing peers."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

# the benchmark is a script folder, not part of the installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from speedbench import cases, libraries, memory, report, sparse, spec, stdp
from speedbench.timing import summarise, time_fn, time_interleaved
from speedbench.workload import TimeFold, spikes, train_step, workload

from deepspike.neurons import Neuron

TINY = dataclasses.replace(spec.QUICK, warmup=0, repeats=2)
TINY_RSTDP = dataclasses.replace(TINY, rstdp_images=20, conv_stdp_images=2)


def context(statuses: dict[str, libraries.Status]) -> cases.Context:
    return cases.Context(TINY, threads=1, statuses=statuses, progress=lambda message: None)


@pytest.mark.parametrize("library", [libraries.DEEPSPIKE, libraries.LIMIT], ids=lambda x: x.name)
def test_mlp_and_cnn_map_time_major_input_to_class_outputs(library):
    mlp = library.mlp(20, 16, 10)
    assert mlp(workload(3, 2, (20,), 0.3).x).shape == (3, 2, 10)
    cnn = library.cnn()
    assert cnn(workload(2, 1, (1, 28, 28), 0.3).x).shape == (2, 1, 10)


def test_limit_is_the_same_layers_without_neurons():
    spiking = libraries.DEEPSPIKE.mlp(20, 16, 10)
    limit = libraries.LIMIT.mlp(20, 16, 10)
    shapes = [p.shape for p in spiking.parameters()]
    assert [p.shape for p in limit.parameters()] == shapes
    assert any(isinstance(m, Neuron) for m in spiking.modules())
    assert not any(isinstance(m, Neuron) for m in limit.modules())


def test_deepspike_neuron_has_the_stated_leak():
    neuron = libraries.deepspike_neuron()
    assert neuron.model.beta == pytest.approx(spec.BETA)


@pytest.mark.parametrize(
    ("module", "neuron"),
    [
        ("snntorch", libraries.SnnTorchLeaky),
        ("spikingjelly", libraries.spikingjelly_neuron),
        ("norse", libraries.NorseLIF),
    ],
)
def test_peer_neurons_spike_exactly_like_deepspike(module, neuron):
    pytest.importorskip(module)
    x = torch.rand(30, 4, 50, generator=torch.Generator().manual_seed(0)) * 0.6
    expected = libraries.deepspike_neuron()(x)
    assert expected.mean() > 0.05
    assert torch.equal(neuron()(x), expected)


def test_train_step_changes_the_weights():
    model = libraries.DEEPSPIKE.mlp(20, 16, 10)
    data = workload(3, 4, (20,), 0.5)
    before = [p.detach().clone() for p in model.parameters()]
    train_step(model, data)()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_spikes_are_binary_at_the_requested_activity():
    x = spikes((50, 40, 30), 0.05, seed=1)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert x.mean().item() == pytest.approx(0.05, abs=0.01)


def test_time_fold_applies_a_per_sample_module_to_every_step():
    x = torch.randn(3, 2, 5)
    linear = nn.Linear(5, 4)
    assert torch.allclose(TimeFold(linear)(x), linear(x))


def test_summarise_gives_median_and_min_in_ms():
    timing = summarise([0.003, 0.001, 0.002, 0.010])
    assert timing.median_ms == pytest.approx(2.5)
    assert timing.min_ms == pytest.approx(1.0)
    assert timing.repeats == 4
    with pytest.raises(ValueError):
        summarise([])


def test_time_fn_warms_up_then_times_each_repeat():
    calls = []
    timing = time_fn(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7
    assert timing.repeats == 5
    assert 0 <= timing.min_ms <= timing.median_ms


def test_time_fn_keeps_timing_short_calls_until_min_seconds():
    timing = time_fn(lambda: time.sleep(0.001), warmup=0, repeats=2, min_seconds=0.02)
    assert 2 < timing.repeats <= 21


def test_interleaved_timing_runs_rounds_until_every_function_has_min_seconds():
    order = []

    def slow():
        order.append("slow")
        time.sleep(0.004)

    def fast():
        order.append("fast")

    def broken():
        raise RuntimeError("no")

    fns = {"slow": slow, "fast": fast, "broken": broken}
    timed = time_interleaved(fns, warmup=1, repeats=2, min_seconds=0.02, max_repeats=50)
    assert isinstance(timed["broken"], RuntimeError)
    # the fast function never reaches 20 ms, so the rounds go on to max_repeats, in turn
    assert timed["slow"].repeats == timed["fast"].repeats == 50
    assert order[:2] == ["slow", "fast"] and order[2:6] == ["slow", "fast"] * 2
    plain = time_interleaved({"slow": slow}, warmup=0, repeats=3)
    assert plain["slow"].repeats == 3


def test_markdown_cells_escape_pipes():
    assert report.cell("1/(a|x| + 1)") == "1/(a\\|x\\| + 1)"
    assert report.cell(None) == "—"
    assert report.cell(1.23456) == "1.23"


def results_by_hand() -> dict:
    """A results dict shaped like speed.py's, with numbers chosen by hand."""

    def timed(ms: float) -> dict:
        return {"median_ms": ms, "min_ms": ms * 0.9, "repeats": 3}

    return {
        "quick": True,
        "machine": {"cpu": "test cpu", "threads": 2, "torch": "x", "python": "3"},
        "settings": {"warmup": 1, "repeats": 3},
        "libraries": {
            "deepspike": {"available": True, "version": "0", "reason": None},
            "norse": {"available": False, "version": None, "reason": "not installed"},
        },
        "neuron_mapping": spec.NEURON_MAPPING,
        "mlp_train": {
            "config": {"timesteps": 25},
            "ms": {
                "deepspike": timed(110.0),
                "snntorch": timed(300.0),
                "spikingjelly": timed(150.0),
                "norse": {"unavailable": "not installed"},
                "limit": timed(100.0),
            },
            "ratio_to_limit": {"deepspike": 1.1},
        },
        "cnn_train": {
            "config": {"timesteps": 25},
            "ms": {"deepspike": timed(120.0), "limit": timed(100.0)},
            "ratio_to_limit": {"deepspike": 1.2},
        },
        "scaling": {
            "config": {"batch": 128},
            "libraries": ["deepspike", "limit"],
            "cells": [
                {"timesteps": 10, "hidden": 200, "ms": {}, "ratio_to_limit": {"deepspike": 1.1}},
                {"timesteps": 25, "hidden": 800, "ms": {}, "ratio_to_limit": {"deepspike": 1.3}},
            ],
        },
        "memory": {
            "config": {"timesteps": 100},
            "saved_for_backward": {
                "deepspike": {"mb": 90.0},
                "deepspike-lean": {"mb": 40.0},
                "snntorch": {"mb": 100.0},
            },
            "peak_rss_delta": {"deepspike": {"peak_rss_delta_mb": 60.0}, "snntorch": {}},
        },
        "sparse_inference": {
            "config": {"timesteps": 25},
            "rows": [
                {
                    "batch": 1,
                    "activity": 0.05,
                    "speedup": 3.5,
                    "speedup_of_min": 3.1,
                    "dense_forced_by": "x",
                },
                {"batch": 128, "activity": 0.05, "speedup": 1.5, "dense_forced_by": "x"},
            ],
        },
        "stdp": {
            "protocol": {"images": 3},
            "deepspike": {"available": True, "images_per_s": 100.0},
            "bindsnet": {"available": False, "reason": "not installed", "images_per_s": None},
        },
    }


def test_summary_reports_headline_numbers_and_target_checks():
    summary = report.build_summary(results_by_hand())
    assert summary["mlp_train_ms"] == 110.0
    assert summary["mlp_limit_ms"] == 100.0
    assert (summary["mlp_best_peer"], summary["mlp_best_peer_ms"]) == ("spikingjelly", 150.0)
    assert summary["cnn_train_ms"] == 120.0
    assert summary["peak_mem_T100_mb"] == 90.0
    assert summary["peak_mem_T100_lean_mb"] == 40.0
    assert summary["memory_default_vs_snntorch"] == pytest.approx(0.9)
    assert summary["snntorch_peak_mem_T100_mb"] == 100.0
    assert summary["snntorch_peak_rss_T100_mb"] is None
    assert summary["sparse_speedup_at_5pct"] == 3.5
    assert summary["sparse_speedup_at_5pct_of_min"] == 3.1
    assert summary["bindsnet_images_per_s"] is None
    targets = summary["targets"]
    assert targets["mlp_within_limit"]["value"] == 1.3  # the worst scaling cell
    assert targets["mlp_within_limit"]["met"] is False
    assert targets["mlp_within_limit"]["threshold"] == 1.25
    assert targets["cnn_within_limit"]["value"] == pytest.approx(1.2)
    assert targets["cnn_within_limit"]["met"] is False
    assert targets["memory_vs_snntorch"]["value"] == pytest.approx(0.4)
    assert targets["memory_vs_snntorch"]["met"] is True
    assert targets["sparse_speedup"]["met"] is True
    assert targets["stdp_vs_bindsnet"] == {
        **targets["stdp_vs_bindsnet"],
        "met": None,
        "value": None,
    }


def test_summary_of_an_empty_run_is_all_unmeasured():
    summary = report.build_summary({})
    assert summary["mlp_train_ms"] is None
    assert all(target["met"] is None for target in summary["targets"].values())


def test_markdown_shows_every_section_and_unmet_targets():
    results = results_by_hand()
    results["summary"] = report.build_summary(results)
    text = report.markdown(results)
    for heading in (
        "## Targets",
        "## MLP training step",
        "## CNN training step",
        "## MLP scaling",
        "## Training memory",
        "## Inference vs input activity",
        "## STDP",
    ):
        assert heading in text
    assert "**no**" in text and "not measured" in text


def test_write_creates_json_and_markdown(tmp_path):
    results = results_by_hand()
    results["summary"] = report.build_summary(results)
    json_path, md_path = report.write(results, tmp_path / "out")
    assert json_path.name == "cpu.json" and md_path.name == "cpu.md"
    assert '"summary"' in json_path.read_text()


def test_a_missing_peer_is_unavailable_with_the_reason():
    status = libraries.probe_module("ghost", "no_such_module_xyz", "no-such-dist-xyz")
    assert not status.available
    assert "not installed" in status.reason


def test_a_peer_that_fails_to_import_is_unavailable_with_the_error(tmp_path, monkeypatch):
    (tmp_path / "broken_peer_xyz.py").write_text("raise RuntimeError('operator does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    status = libraries.probe_module("broken", "broken_peer_xyz", "torch")
    assert not status.available
    assert status.reason == "import failed: RuntimeError: operator does not exist"


def test_unavailable_and_failing_libraries_are_recorded_and_the_case_goes_on():
    def explode(*args):
        raise RuntimeError("boom")

    ghost = libraries.Library("ghost", "no_such_module_xyz", "no-such-dist-xyz", explode, explode)
    failing = libraries.Library("failing", "torch", "torch", explode, explode)
    statuses = {
        "ghost": libraries.probe(ghost),
        "failing": libraries.Status("failing", True, "1"),
        "limit": libraries.Status("limit", True, "1"),
    }
    data = workload(2, 2, (20,), 0.3)
    results = cases.train_case(
        context(statuses),
        "mlp",
        lambda lib: lib.mlp(20, 8, 10),
        data,
        (ghost, failing, libraries.LIMIT),
    )
    assert "not installed" in results["ghost"]["unavailable"]
    assert results["failing"] == {"error": "RuntimeError: boom"}
    assert results["limit"]["repeats"] == 2


def test_saved_tensor_bytes_counts_what_backward_keeps_and_not_dropped_branches():
    data = workload(4, 3, (20,), 0.5)

    class Branchy(nn.Module):
        def __init__(self, detour: bool) -> None:
            super().__init__()
            self.linear = nn.Linear(20, 10)
            self.detour = detour

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.linear(x)
            if self.detour:  # a graph branch that is dropped again: its saved tensor is freed
                torch.sigmoid(y * 3.0).detach()
            return y

    plain = memory.saved_tensor_bytes(Branchy(False), data)
    weights = sum(p.numel() * 4 for p in Branchy(False).parameters())
    assert data.x.numel() * 4 <= plain < data.x.numel() * 4 + weights  # no parameters counted
    assert memory.saved_tensor_bytes(Branchy(True), data) == plain


def test_rss_measure_reports_a_non_negative_delta():
    model = libraries.LIMIT.mlp(20, 8, 10)
    result = memory.measure_rss_delta(model, workload(2, 2, (20,), 0.3), lambda m: None)
    assert result["peak_rss_delta_mb"] >= 0


def test_dense_forced_turns_the_event_path_off_and_back_on():
    model = libraries.DEEPSPIKE.mlp(20, 8, 10)
    layers = sparse.synaptic_layers(model)
    switch = sparse.find_switch(layers)
    if switch is None:
        pytest.skip("this deepspike's Linear has no event-driven path")
    before = [getattr(layer, switch.name) for layer in layers]
    with sparse.dense_forced(model) as forced_by:
        assert switch.name in forced_by
        assert all(getattr(layer, switch.name) == switch.off for layer in layers)
    assert [getattr(layer, switch.name) for layer in layers] == before


def test_dense_forced_without_a_switch_says_so(monkeypatch):
    monkeypatch.setattr(sparse, "SWITCHES", (sparse.Switch("no_such_switch", bool, False),))
    with sparse.dense_forced(libraries.DEEPSPIKE.mlp(20, 8, 10)) as forced_by:
        assert forced_by == sparse.NO_SWITCH


def test_the_event_and_dense_paths_compute_the_same_output():
    model = libraries.DEEPSPIKE.mlp(50, 16, 10).eval()
    x = spikes((5, 3, 50), 0.02, seed=3)
    with torch.no_grad():
        event = model(x)
        with sparse.dense_forced(model):
            dense = model(x)
    assert (event != dense).float().mean() < 0.01  # equal up to float summation order


def test_stdp_reports_a_missing_recipe(monkeypatch):
    monkeypatch.setattr(stdp, "RECIPE_ID", "no-such-recipe")
    result = stdp.deepspike_stdp(TINY)
    assert result == {
        "available": False,
        "reason": "not available: no-such-recipe recipe not registered",
        "images_per_s": None,
    }


def test_rstdp_case_times_both_paths_and_reports_them():
    result = cases.rstdp_case(dataclasses.replace(context({}), settings=TINY_RSTDP))
    assert result["protocol"]["images_per_call"] == TINY_RSTDP.rstdp_images
    for path in ("compiled", "torch"):
        assert result[path]["images_per_s"] > 0 and result[path]["repeats"] == TINY.repeats
    rates = result["compiled"]["images_per_s"] / result["torch"]["images_per_s"]
    assert result["speedup"] == pytest.approx(rates, abs=0.01)
    text = report.markdown({**results_by_hand(), "rstdp_decision": result})
    assert "## R-STDP decision layer" in text and "Speed-up of the compiled loop" in text


def test_conv_stdp_case_times_both_paths_of_both_layers():
    result = cases.conv_stdp_case(dataclasses.replace(context({}), settings=TINY_RSTDP))
    assert result["protocol"]["images_per_call"] == 2
    for layer in ("conv1", "conv2"):
        for path in ("compiled", "torch"):
            assert result[layer][path]["images_per_s"] > 0
        assert 0 < result[layer]["input_fired"] <= 1 and result[layer]["speedup"] > 0
    text = report.markdown({**results_by_hand(), "conv_stdp": result})
    assert "## Conv STDP layers" in text and "### conv2" in text


def test_cli_options(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import speed

    args = speed.parse_args(
        ["--quick", "--threads", "1", "--out", str(tmp_path), "--cases", "stdp"]
    )
    assert (args.quick, args.threads, args.out, args.cases) == (True, 1, tmp_path, ["stdp"])
    with pytest.raises(SystemExit):
        speed.parse_args(["--threads", "0"])


def test_merge_keeps_other_cases_and_refuses_the_other_grid(tmp_path):
    import json

    import speed

    path = tmp_path / "cpu.json"
    previous = {"quick": False, "libraries": {"bindsnet": {"available": False}}, "mlp_train": 1}
    path.write_text(json.dumps(previous))
    fresh = {"quick": False, "libraries": {"bindsnet": {"available": True}}, "created": "now"}
    out = speed.merged(path, fresh)
    assert out["mlp_train"] == 1 and out["created"] == "now"
    assert out["libraries"]["bindsnet"] == {"available": True}
    with pytest.raises(SystemExit, match="quick"):
        speed.merged(path, {**fresh, "quick": True})
    assert speed.merged(tmp_path / "absent.json", fresh) is fresh
