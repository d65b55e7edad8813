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
    n_val = int(round(val_fraction * n))
    if len(pool) == 0 or n_val == 0:
        return train, train.subset(np.zeros(0, dtype=int))
    n_val = min(n_val, len(pool) - 1)
    pool_keys = keys[pool]
    # sklearn needs every stratum to hold at least two members: guaranteed by min_count >= 2,
    # but with val_fraction > 0.5 min_count is 1, so fall back to an unstratified draw then.
    stratify = pool_keys if min_count >= 2 and len(set(pool_keys)) <= n_val else None
    _, val_idx = train_test_split(pool, test_size=n_val, random_state=seed, stratify=stratify)
    val_idx = np.sort(val_idx)
    mask = np.zeros(n, dtype=bool)
    mask[val_idx] = True
    return train.subset(~mask), train.subset(mask)
