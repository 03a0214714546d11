import json

import pytest
import torch

from deepspike.errors import CheckpointError, ConfigError, DataError
from deepspike.io import load_checkpoint, read_result, save_checkpoint, write_result
from deepspike.io.atomic import write_atomic


def test_checkpoint_round_trip_keeps_tensors_and_metadata(tmp_path):
    tensors = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    path = save_checkpoint(tmp_path / "c.safetensors", tensors, {"recipe": "x", "epoch": 3})
    loaded, meta = load_checkpoint(path)
    assert meta == {"recipe": "x", "epoch": 3}
    assert set(loaded) == {"w", "b"}
    assert torch.equal(loaded["w"], tensors["w"]) and torch.equal(loaded["b"], tensors["b"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_corrupt_or_missing_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(bad)


def minimal_result(**changes):
    record = {
        "schema": 1,
        "recipe": "r",
        "paper": {"cite": "c", "dataset": "mnist", "accuracy": 90.0},
        "dataset": "digits",
        "n_train": 10,
        "n_test": 5,
        "accuracy": 80.0,
        "timesteps": 4,
        "synops_per_sample": 1.0,
        "ann_macs_per_sample": 2.0,
        "spikes_per_neuron": 0.1,
        "params": 3,
        "energy_uj_per_sample": {"cmos45_float": 1.0, "cmos45_float_ann": 2.0},
        "local_learning": False,
        "train_seconds": 1.0,
        "threads": 2,
        "device": "cpu",
        "seed": 0,
        "command": "deepspike train r",
        "git_commit": "abc",
        "created": "2026-01-01T00:00:00Z",
    }
    record.update(changes)
    return record


def test_result_round_trip_and_validation(tmp_path):
    path = write_result(tmp_path / "result.json", minimal_result())
    assert read_result(path)["accuracy"] == 80.0
    with pytest.raises(ConfigError, match="lacks field"):
        write_result(
            tmp_path / "r2.json", {k: v for k, v in minimal_result().items() if k != "seed"}
        )
    with pytest.raises(ConfigError, match="not a percentage"):
        write_result(tmp_path / "r3.json", minimal_result(accuracy=float("nan")))
    assert not (tmp_path / "r2.json").exists() and not (tmp_path / "r3.json").exists()
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_result(tmp_path / "broken.json")
    assert json.loads(path.read_text())["schema"] == 1
