"""The command line: user errors are one line with exit status 2; train/evaluate/bench work."""

import json
import os
import subprocess
import sys

import pytest

from deepspike.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = [line for line in err.splitlines() if line.strip()]
    return code == 2 and len(lines) == 1 and lines[0].startswith("deepspike: error:")


def test_version_from_the_installed_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "deepspike.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("deepspike ")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "no-such-recipe"], "unknown recipe"),
        (["train", "surrogate-lif-mlp", "--dataset", "cifar99"], "cannot use data set"),
        (["train", "surrogate-lif-mlp", "--set", "hidden=lots"], "not a valid int"),
        (["train", "surrogate-lif-mlp", "--set", "colour=red"], "no setting"),
        (["bench", "--recipes", "nope"], "unknown recipe"),
        (["frobnicate"], "invalid choice"),
        (["evaluate", "does-not-exist"], "no checkpoint"),
        (["train", "surrogate-lif-mlp", "--smoke", "--validation", "-1"], "validation=-1"),
        (["train", "surrogate-lif-mlp", "--smoke", "--validation", "99999"], "between 1 and"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(capsys, argv, needle):
    code, _, err = run_cli(capsys, *argv)
    assert one_line_error(code, err), err
    assert needle in err


def test_unwritable_out_is_a_user_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "train", "surrogate-lif-mlp", "--out", str(blocker / "run"))
    assert one_line_error(code, err) and "cannot write" in err
    assert blocker.read_text() == ""


def test_recipes_lists_ids_and_papers(capsys):
    code, out, _ = run_cli(capsys, "recipes")
    assert code == 0 and "surrogate-lif-mlp" in out and "Neftci" in out


def test_info_reports_versions_and_data_locations(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "info", "--data-dir", str(tmp_path))
    assert code == 0 and "torch" in out and str(tmp_path) in out and "mnist" in out


def test_data_check_fails_with_one_line_on_an_empty_dir(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "check", "mnist", "--data-dir", str(tmp_path))
    assert code == 2 and err.strip().startswith("deepspike: error:") and "mnist" in err


@pytest.mark.skipif(not os.environ.get("DEEPSPIKE_DATA"), reason="DEEPSPIKE_DATA is not set")
def test_data_check_verifies_the_real_sets(capsys):
    code, out, _ = run_cli(capsys, "data", "check", "--data-dir", os.environ["DEEPSPIKE_DATA"])
    assert code == 0
    for name in ("mnist", "fsdd", "nmnist-small"):
        assert f"{name}" in out
    assert "FAILED" not in out


def test_train_then_evaluate_smoke_on_digits(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "surrogate-lif-mlp", "--smoke", "--out", str(out_dir), "--no-progress"
    )
    assert code == 0, err
    record = json.loads((out_dir / "result.json").read_text())
    assert record["recipe"] == "surrogate-lif-mlp" and record["dataset"] == "digits"
    assert record["accuracy"] >= 85.0
    assert record["n_test"] == 360 and record["timesteps"] == 16
    assert record["synops_per_sample"] > 0 and record["ann_macs_per_sample"] == 64 * 128 + 128 * 10
    assert record["command"].startswith("deepspike train surrogate-lif-mlp --smoke")
    assert (out_dir / "checkpoint.safetensors").exists()
    code, _, err = run_cli(capsys, "evaluate", str(out_dir), "--no-progress")
    assert code == 0, err
    evaluation = json.loads((out_dir / "evaluation.json").read_text())
    # the same checkpoint and seed give a close accuracy (the rate code is re-sampled)
    assert abs(evaluation["accuracy"] - record["accuracy"]) < 3.0


def test_validation_scores_on_held_out_training_samples_and_never_reads_the_test_split(
    capsys, tmp_path, monkeypatch
):
    from deepspike import data
    from deepspike.bench.report import collect

    loaded = []
    load = data.load

    def recording_load(name, split, *args, **kwargs):
        loaded.append(split)
        return load(name, split, *args, **kwargs)

    monkeypatch.setattr(data, "load", recording_load)
    out_dir = tmp_path / "runs" / "tuned"
    argv = ["train", "surrogate-lif-mlp", "--smoke", "--validation", "200", "--no-progress"]
    code, stdout, err = run_cli(capsys, *argv, "--out", str(out_dir))
    assert code == 0, err
    assert "held-out training samples" in stdout
    assert set(loaded) == {"train"}
    record = json.loads((out_dir / "result.json").read_text())
    assert record["evaluated_on"] == "validation" and record["validation"] == 200
    assert record["n_test"] == 200
    assert collect(tmp_path / "runs") == []  # the comparison table takes test scores only
    code, stdout, err = run_cli(capsys, "evaluate", str(out_dir), "--no-progress")
    assert code == 0 and "200 validation samples" in stdout
    assert set(loaded) == {"train"}
