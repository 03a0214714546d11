"""Tests of deepspike.data: roots, pinned sums, verified downloads and the loaders.

Tests that need the real data sets read the data root from ``DEEPSPIKE_DATA`` and skip when it
is unset or the set is absent there.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from deepspike import data
from deepspike.data import DatasetSpec, Source
from deepspike.data.fsdd import parse_fsdd_name
from deepspike.data.mnist import MAGIC_IMAGES, parse_idx, read_idx
from deepspike.data.nmnist import parse_label_list
from deepspike.data.specs import parse_checksums
from deepspike.data.store import STAMP_NAME, sha256_file
from deepspike.errors import ConfigError, DataError

# ----------------------------------------------------------------------------------- helpers


def _real_root(name: str) -> Path:
    """The data root from DEEPSPIKE_DATA if it holds set ``name``; skip the test otherwise."""
    env = os.environ.get("DEEPSPIKE_DATA")
    if not env:
        pytest.skip("DEEPSPIKE_DATA is not set; the real data sets are not available")
    root = Path(env)
    if not (root / name).is_dir():
        pytest.skip(f"data set {name!r} is absent from $DEEPSPIKE_DATA")
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid downloads, so a missing real set never reaches the network."""
    monkeypatch.setenv("DEEPSPIKE_OFFLINE", "1")


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/srv``; yields (base URL, folder)."""
    served = tmp_path / "srv"
    served.mkdir()
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PAYLOAD = b"deepspike fixture payload\n" * 1000


# ------------------------------------------------------------------------------ resolution


def test_resolve_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, env_root, explicit = tmp_path / "home", tmp_path / "env", tmp_path / "explicit"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)
    assert data.resolve_root() == home / ".cache" / "deepspike"

    monkeypatch.setenv("DEEPSPIKE_DATA", str(env_root))
    assert data.resolve_root() == env_root
    assert data.resolve_root(explicit) == explicit
    assert data.resolve_root(str(explicit)) == explicit

    assert data.where("mnist") == env_root / "mnist"
    assert data.where("nmnist", explicit) == explicit / "nmnist-small"
    monkeypatch.delenv("DEEPSPIKE_DATA")
    assert data.where("fsdd") == home / ".cache" / "deepspike" / "fsdd"
    assert data.resolve_root("~/x") == home / "x"


def test_where_unknown_name() -> None:
    with pytest.raises(ConfigError, match="nmnist-small"):
        data.where("cifar")


# ------------------------------------------------------------------------------- the specs


def test_registry_is_read_only_and_complete() -> None:
    assert set(data.SPECS) == {"mnist", "fsdd", "nmnist-small"}
    with pytest.raises(TypeError):
        data.SPECS["x"] = data.SPECS["mnist"]  # type: ignore[index]
    assert len(data.SPECS["mnist"].files) == 4
    assert len(data.SPECS["fsdd"].files) == 3000
    nm = data.SPECS["nmnist-small"].files
    assert len(nm) == 1102 and {"train1K.txt", "test100.txt"} <= set(nm)
    urls = data.SPECS["nmnist-small"].urls_for("events/7.bs2")
    assert urls and all(u.endswith("/example/NMNISTsmall/7.bs2") for u in urls)
    assert data.SPECS["fsdd"].urls_for("recordings/0_theo_3.wav")[0] == (
        "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/v1.0.10/"
        "recordings/0_theo_3.wav"
    )
    assert any("ossci-datasets" in s.base_url for s in data.SPECS["mnist"].sources)


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match="64 hex"):
        DatasetSpec("x", {"a.bin": "abc"})
    with pytest.raises(ConfigError, match="relative"):
        DatasetSpec("x", {"../a.bin": "0" * 64})
    spec = DatasetSpec("x", {"a.bin": "A" * 64}, ("http://h/base",))
    assert spec.files["a.bin"] == "a" * 64
    assert spec.urls_for("a b.bin") == ["http://h/base/a%20b.bin"]


def test_parse_checksums() -> None:
    h = "0" * 64
    assert parse_checksums(f"# c\n\n{h}  a/b.wav\n{h} *c.bin\n") == {"a/b.wav": h, "c.bin": h}
    with pytest.raises(DataError, match="line 1"):
        parse_checksums("nothex  a.bin\n")


@pytest.mark.parametrize("name", ["mnist", "fsdd", "nmnist-small"])
def test_pins_match_the_shipped_sha256sums(name: str) -> None:
    sums = _real_root(name) / name / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"{name} has no SHA256SUMS")
    assert parse_checksums(sums.read_text()) == dict(data.SPECS[name].files)


def test_check_real_sets_verifies_without_writing() -> None:
    root = _real_root("mnist")
    names = [n for n in data.SPECS if (root / n).is_dir()]
    t0 = time.perf_counter()
    results = data.check(names, data_dir=root)
    elapsed = time.perf_counter() - t0
    assert [r.name for r in results] == names
    for r in results:
        assert r.ok, r.line()
        assert r.n_verified == r.n_expected == len(data.SPECS[r.name].files)
        assert r.name in r.line()
        read_only = not (root / r.name).stat().st_mode & stat.S_IWUSR
        if read_only:
            assert not (root / r.name / STAMP_NAME).exists()
    assert elapsed < 20
    assert data.ensure("mnist", root, download=False) == root / "mnist"


def test_check_reports_missing(tmp_path: Path) -> None:
    (r,) = data.check(["nmnist"], data_dir=tmp_path)
    assert not r.ok and r.n_verified == 0 and r.n_expected == 1102
    assert str(tmp_path / "nmnist-small") in r.reason


# ------------------------------------------------------------------------------- real loaders


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    ("split", "n", "counts"),
    [("train", 60000, MNIST_TRAIN_COUNTS), ("test", 10000, MNIST_TEST_COUNTS)],
)
def test_mnist_loads(split: str, n: int, counts: list[int], offline: None) -> None:
    root = _real_root("mnist")
    x, y = data.load("mnist", split, data_dir=root)
    assert x.shape == (n, 28, 28) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    hist = torch.bincount(y, minlength=10)
    assert hist.tolist() == counts
    assert bool((hist > n // 20).all())


def test_fsdd_split_rule() -> None:
    train, test = data.fsdd_files("train"), data.fsdd_files("test")
    assert (len(train), len(test)) == (2700, 300)
    assert all(parse_fsdd_name(p).index <= 4 for p in test)
    assert all(5 <= parse_fsdd_name(p).index <= 49 for p in train)
    assert data.fsdd_split_of(0) == data.fsdd_split_of(4) == "test"
    assert data.fsdd_split_of(5) == "train"


def test_fsdd_loads(offline: None) -> None:
    root = _real_root("fsdd")
    waves, labels, speakers = data.load_fsdd("test", data_dir=root)
    assert len(waves) == len(speakers) == labels.shape[0] == 300
    assert all(w.dtype == torch.float32 and w.dim() == 1 for w in waves)
    assert max(float(w.abs().max()) for w in waves) <= 1.0
    assert torch.bincount(labels, minlength=10).tolist() == [30] * 10
    assert len(set(speakers)) == 6

    x, y = data.load("fsdd", "train", data_dir=root, length=2000)
    assert x.shape == (2700, 2000) and x.dtype == torch.float32 and y.shape == (2700,)
    up, _, _ = data.load_fsdd("test", data_dir=root, sample_rate=16000)
    assert abs(up[0].shape[0] - 2 * waves[0].shape[0]) <= 2


def test_nmnist_subset(offline: None) -> None:
    root = _real_root("nmnist-small")
    for split, n in (("train", 1000), ("test", 100)):
        events, labels = data.load("nmnist", split, data_dir=root)
        assert len(events) == n and labels.shape == (n,) and labels.dtype == torch.int64
        assert set(labels.tolist()) == set(range(10))
        for ev in events:
            assert ev.dtype.names == ("x", "y", "p", "t") and ev.size > 1000
            assert int(ev["x"].max()) < 34 and int(ev["y"].max()) < 34
            assert int(ev["x"].min()) >= 0 and int(ev["y"].min()) >= 0
            assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
            assert bool((np.diff(ev["t"]) >= 0).all())


def test_read_nmnist_events_hand_built(tmp_path: Path) -> None:
    raw = bytes([1, 2, 0x80 | 0x01, 0x23, 0x45, 33, 33, 0x7F, 0xFF, 0xFF])
    ev = data.read_nmnist_events(raw)
    assert ev["x"].tolist() == [1, 33] and ev["y"].tolist() == [2, 33]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t"].tolist() == [0x012345, 0x7FFFFF]
    path = tmp_path / "two.bs2"
    path.write_bytes(raw)
    assert np.array_equal(data.read_nmnist_events(path), ev)
    assert data.read_nmnist_events(b"").size == 0
    with pytest.raises(DataError, match="multiple of 5"):
        data.read_nmnist_events(raw[:7])


def test_parse_label_list() -> None:
    assert parse_label_list("#sample #class\n1\t5\n2\t0\n") == [(1, 5), (2, 0)]
    with pytest.raises(DataError):
        parse_label_list("1\n")


# ------------------------------------------------------------------------------------ digits


def test_digits_split_sizes_and_determinism() -> None:
    x_tr, y_tr = data.load_digits("train")
    x_te, y_te = data.load("digits", "test")
    assert x_tr.shape == (1437, 8, 8) and x_te.shape == (360, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) == 1.0
    counts = torch.bincount(y_te, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified
    x2, y2 = data.load_digits("train", seed=0)
    assert torch.equal(x_tr, x2) and torch.equal(y_tr, y2)
    x3, _ = data.load_digits("train", seed=1)
    assert not torch.equal(x_tr, x3)


def test_load_rejects_unknown_names_splits_and_options() -> None:
    with pytest.raises(ConfigError, match=r"digits.*fsdd.*mnist.*nmnist"):
        data.load("cifar10", "train")
    with pytest.raises(ConfigError, match="split"):
        data.load("digits", "valid")
    with pytest.raises(ConfigError, match="length"):
        data.load("digits", "train", length=3)


# ---------------------------------------------------------------------------- download path


def test_download_into_tmp_verifies(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_root
    (served / "sub").mkdir()
    (served / "sub" / "payload.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec("fixture", {"sub/payload.bin": _sha(PAYLOAD)}, (Source(url),))
    target = tmp_path / "root"
    folder = data.ensure(spec, data_dir=target, download=True, progress=False)
    assert folder == target / "fixture"
    assert (folder / "sub" / "payload.bin").read_bytes() == PAYLOAD
    assert sha256_file(folder / "sub" / "payload.bin") == _sha(PAYLOAD)
    assert [p.name for p in _files_under(folder)] == [STAMP_NAME, "payload.bin"]
    assert data.ensure(spec, data_dir=target, download=False) == folder  # now verified offline


def test_download_falls_back_to_next_source(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_root
    (served / "good").mkdir()
    (served / "good" / "p.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec("fixture", {"p.bin": _sha(PAYLOAD)}, (url + "missing/", url + "good/"))
    folder = data.ensure(spec, data_dir=tmp_path, download=True)  # with a progress bar
    assert (folder / "p.bin").read_bytes() == PAYLOAD


def test_wrong_hash_raises_and_leaves_nothing(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_root
    (served / "a.bin").write_bytes(PAYLOAD)
    (served / "b.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec(
        "fixture",
        {"a.bin": _sha(b"something else"), "events/b.bin": _sha(b"other")},
        (Source(url, strip_prefix="events/"),),
    )
    with pytest.raises(DataError, match=r"a\.bin") as err:
        data.ensure(spec, data_dir=tmp_path, download=True, progress=False)
    assert "sha256" in str(err.value) and "fixture" in str(err.value)
    assert _files_under(tmp_path / "fixture") == []


def test_offline_missing_set_names_files_and_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSPIKE_OFFLINE", "1")
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "env-root"))
    with pytest.raises(DataError) as err:
        data.ensure("mnist")
    msg = str(err.value)
    assert "'mnist'" in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "and 1 more" in msg and "4 of 4" in msg
    assert str(tmp_path / "env-root" / "mnist") in msg and "DEEPSPIKE_DATA" in msg
    assert "DEEPSPIKE_OFFLINE" in msg
    assert not (tmp_path / "env-root").exists()
    with pytest.raises(DataError, match="DEEPSPIKE_OFFLINE"):
        data.load("fsdd", "test", data_dir=tmp_path)


def test_read_only_folder_is_never_written(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_root
    (served / "p.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec("fixture", {"p.bin": _sha(PAYLOAD)}, (url,))
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(DataError, match="read-only"):
            data.ensure(spec, data_dir=root, download=True, progress=False)
        assert list(root.iterdir()) == []
    finally:
        root.chmod(0o755)


# ------------------------------------------------------------------------- corrupt / malformed


def _flip_byte(path: Path, offset: int = 10) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= 0xFF
    path.write_bytes(bytes(b))


def test_corrupt_file_raises(tmp_path: Path) -> None:
    folder = tmp_path / "fixture"
    folder.mkdir()
    (folder / "p.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec("fixture", {"p.bin": _sha(PAYLOAD)})
    data.ensure(spec, data_dir=tmp_path, download=False)
    assert (folder / STAMP_NAME).is_file()
    _flip_byte(folder / "p.bin")
    with pytest.raises(DataError, match="corrupt") as err:
        data.ensure(spec, data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "p.bin" in msg and _sha(PAYLOAD)[:12] in msg
    assert _sha((folder / "p.bin").read_bytes())[:12] in msg
    assert not (folder / STAMP_NAME).exists()


def test_corrupt_real_file_raises(tmp_path: Path) -> None:
    src = _real_root("mnist") / "mnist" / "t10k-labels-idx1-ubyte.gz"
    (tmp_path / "mnist").mkdir()
    for name in data.SPECS["mnist"].files:
        shutil.copyfile(src.with_name(name), tmp_path / "mnist" / name)
    _flip_byte(tmp_path / "mnist" / src.name, offset=2000)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_corrupt_file_is_replaced_by_a_verified_download(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = http_root
    (served / "p.bin").write_bytes(PAYLOAD)
    spec = DatasetSpec("fixture", {"p.bin": _sha(PAYLOAD)}, (url,))
    (tmp_path / "fixture").mkdir()
    (tmp_path / "fixture" / "p.bin").write_bytes(b"junk")
    folder = data.ensure(spec, data_dir=tmp_path, download=True, progress=False)
    assert (folder / "p.bin").read_bytes() == PAYLOAD


def _idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return head + payload


def test_idx_header_checks(tmp_path: Path) -> None:
    good = _idx_bytes(MAGIC_IMAGES, (2, 3, 4), bytes(range(24)))
    arr = parse_idx(good, magic=MAGIC_IMAGES)
    assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8 and int(arr[1, 2, 3]) == 23

    path = tmp_path / "bad-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(0x00000903, (2, 3, 4), bytes(24))))
    with pytest.raises(DataError, match="magic"):
        read_idx(path, magic=MAGIC_IMAGES)
    path.write_bytes(gzip.compress(b"\x01\x00\x08\x03" + bytes(40)))
    with pytest.raises(DataError, match="malformed IDX header"):
        read_idx(path)
    path.write_bytes(gzip.compress(_idx_bytes(MAGIC_IMAGES, (2, 3, 4), bytes(23))))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path, magic=MAGIC_IMAGES)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
