"""``deepspike bench``: runs recipes in isolation, reuses finished runs, writes the table."""

import json

import pytest

from deepspike import runner
from deepspike.bench import run_bench
from deepspike.bench.table import markdown_table
from deepspike.errors import ConfigError


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run_bench(recipe_ids=["surrogate-lif-mlp"], out=out, progress=False)
    return out


def test_quick_bench_writes_results_and_table(bench_dir):
    records = json.loads((bench_dir / "results.json").read_text())
    assert [r["recipe"] for r in records] == ["surrogate-lif-mlp"]
    assert records[0]["dataset"] == "digits" and records[0]["profile"] == "quick"
    assert records[0]["accuracy"] > 85.0
    table = (bench_dir / "table.md").read_text()
    assert "surrogate-lif-mlp" in table and "synops" in table
    assert (bench_dir / "surrogate-lif-mlp" / "result.json").exists()


def test_finished_runs_are_reused(bench_dir, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(runner, "train", must_not_train)
    records = run_bench(recipe_ids=["surrogate-lif-mlp"], out=bench_dir, progress=False)
    assert records[0]["accuracy"] > 85.0


def test_a_failing_recipe_is_recorded_and_the_run_continues(tmp_path, monkeypatch):
    calls = []

    def flaky_train(recipe_id, **kwargs):
        calls.append(recipe_id)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "train", flaky_train)
    records = run_bench(
        recipe_ids=["surrogate-lif-mlp", "surrogate-lif-mlp"], out=tmp_path, progress=False
    )
    assert len(calls) == 2
    assert all(r["status"] == "failed" and "out of memory" in r["error"] for r in records)
    assert "FAILED" in (tmp_path / "table.md").read_text()


def test_bad_profile_recipe_or_dataset_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="profile"):
        run_bench(profile="huge", out=tmp_path)
    with pytest.raises(ConfigError, match="unknown recipe"):
        run_bench(recipe_ids=["nope"], out=tmp_path)
    with pytest.raises(ConfigError, match="cannot use data set"):
        run_bench(recipe_ids=["surrogate-lif-mlp"], dataset="cifar10", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_table_flags_rows_below_the_paper():
    record = {
        "recipe": "r",
        "dataset": "mnist",
        "accuracy": 97.0,
        "paper": {"accuracy": 98.0},
        "synops_per_sample": 1.5e6,
        "ann_macs_per_sample": 2e6,
        "energy_uj_per_sample": {"cmos45_float": 1.0, "cmos45_float_ann": 9.0},
        "timesteps": 10,
        "spikes_per_neuron": 0.5,
        "train_seconds": 3.0,
    }
    table = markdown_table([record])
    assert "97.00 (-1.00) ⚠" in table and "1.5M" in table and "2M" in table


def test_report_is_self_contained_with_table_and_plots(bench_dir):
    page = (bench_dir / "report.html").read_text()
    assert '<table id="comparison">' in page and "surrogate-lif-mlp" in page
    assert 'id="plot-accuracy_vs_energy"' in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert (bench_dir / "accuracy_vs_energy.png").read_bytes()[:4] == b"\x89PNG"
    assert (bench_dir / "raster_surrogate-lif-mlp.png").exists()


def test_report_command_re_renders_without_training(bench_dir, monkeypatch, capsys):
    from deepspike.cli import main

    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("report trained"))
    (bench_dir / "table.md").unlink()
    assert main(["report", str(bench_dir)]) == 0
    assert "surrogate-lif-mlp" in (bench_dir / "table.md").read_text()


def test_readme_table_is_replaced_between_markers(bench_dir, tmp_path):
    from deepspike.bench.report import README_BEGIN, README_END, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\noutro\n")
    update_readme(readme, bench_dir)
    text = readme.read_text()
    assert "old table" not in text and "surrogate-lif-mlp" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    readme.write_text("no markers")
    with pytest.raises(ConfigError, match="markers"):
        update_readme(readme, bench_dir)


def test_pareto_front_keeps_only_undominated_points():
    from deepspike.bench.plots import pareto_front

    points = [(1.0, 90.0), (2.0, 85.0), (3.0, 95.0), (0.5, 80.0), (3.0, 94.0)]
    assert pareto_front(points) == [(0.5, 80.0), (1.0, 90.0), (3.0, 95.0)]


def test_rows_of_a_recipe_variant_name_the_variant():
    from deepspike.bench.table import run_label

    record = {"recipe": "diehl2015-stdp", "config": {"n_neurons": 400, "epochs": 0}}
    assert run_label(record) == "diehl2015-stdp (n_neurons=400)"
    assert run_label({"recipe": "lee2016-fc", "config": {"hidden": 800}}) == "lee2016-fc"
    assert run_label({"recipe": "not-registered"}) == "not-registered"


def test_a_resumed_run_shows_its_training_time_over_all_sessions():
    from deepspike.bench.table import training_seconds

    assert training_seconds({"train_seconds": 7.0}) == 7.0
    resumed = {"train_seconds": 2.0, "extra": {"resumed_at_image": 100}}
    assert training_seconds(resumed) is None  # unknown: shown as — rather than 2
    resumed["extra"]["train_seconds_all_sessions"] = 50.0
    assert training_seconds(resumed) == 50.0
    by_epoch = {"train_seconds": 2.0, "extra": {"resumed_at_epoch": 3}}
    assert training_seconds(by_epoch) is None
    fresh = {"train_seconds": 2.0, "extra": {"resumed_at_epoch": None}}
    assert training_seconds(fresh) == 2.0
