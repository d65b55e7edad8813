"""Carving a seeded, stratified validation split out of a training split."""
from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from .task import Split


def stratum_keys(split: Split) -> np.ndarray:
    """(n,) str key per response: its label combination ("0110"), else its class."""
    if split.labels is not None:
        return np.array(["".join(map(str, row)) for row in split.labels], dtype=object)
    if split.scores is not None:
        return split.scores.astype(str).astype(object)
    return np.zeros(len(split), dtype=int).astype(str).astype(object)


def carve_validation(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Split ``train`` into (train, val), stratified by label combination.

    A combination rarer than ``ceil(1 / val_fraction)`` responses would expect
    less than one member in validation, so all its responses stay in train.
    When the common combinations cannot supply the validation rows (tiny data
    with many labels) the rows are drawn uniformly from all of train instead.
    Nothing is dropped: ``len(train) + len(val)`` equals the input size.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(train)
    if val_fraction == 0.0 or n < 2:
        return train, train.subset(np.zeros(0, dtype=int))
    keys = stratum_keys(train)
    combos, counts = np.unique(keys, return_counts=True)
    min_count = math.ceil(1.0 / val_fraction)
    common = set(combos[counts >= min_count])
    pool = np.array([i for i in range(n) if keys[i] in common], dtype=int)
    n_val = max(1, int(round(val_fraction * n)))
    stratify = keys[pool] if len(common) >= 1 else None
    if len(pool) <= n_val or len(common) > n_val:
        # Too few responses in common combinations to stratify (tiny data with many labels,
        # as in the smoke profile): draw the validation rows uniformly from all of train.
        pool, stratify = np.arange(n), None
    _, val_idx = train_test_split(pool, test_size=n_val, random_state=seed, stratify=stratify)
    mask = np.zeros(n, dtype=bool)
    mask[val_idx] = True
    return train.subset(~mask), train.subset(mask)
