"""A tiny multi-class task for the KD tests: short science phrases whose class decides the words."""
from __future__ import annotations

import numpy as np

from scoring_lab.data.task import Split, Task

BANK = ["the gas expands", "heat makes particles move", "no idea", "the mass stays the same",
        "molecules spread out faster", "it changes colour"]


def tiny_task(n: int = 40, k: int = 3, seed: int = 0, n_val: int = 12, n_test: int = 12,
              vary_length: bool = False) -> Task:
    """train/val/test of n/n_val/n_test responses; ``vary_length`` pads some with extra words."""
    rng = np.random.default_rng(seed)

    def split(prefix, m):
        y = rng.integers(0, k, m)
        tail = [" again" * (i % 4) if vary_length else "" for i in range(m)]
        return Split(ids=[f"{prefix}{i}" for i in range(m)],
                     texts=[f"{BANK[c]} {BANK[(c + i) % 6]}{tail[i]}" for i, c in enumerate(y)], scores=y)
    return Task("tiny", "multiclass", split("tr", n), split("va", n_val), split("te", n_test), n_classes=k)
