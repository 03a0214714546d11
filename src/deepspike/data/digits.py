"""scikit-learn's bundled 8x8 digits: the embedded default data set (no files, no network)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from deepspike.data.splits import check_split

TEST_FRACTION = 0.2


@lru_cache(maxsize=8)
def _digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel values are 0-16
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    for a in (x_tr, x_te, y_tr, y_te):
        a.setflags(write=False)
    return x_tr, x_te, y_tr, y_te


def load_digits(split: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split of the 1,797 8x8 digits: images float32 ``[N, 8, 8]`` in [0, 1], labels int64.

    The split is a stratified 80/20 train/test split fixed by ``seed`` (1,437 train, 360 test).
    """
    check_split(split)
    x_tr, x_te, y_tr, y_te = _digits_split(int(seed))
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    return torch.tensor(x), torch.tensor(y)
