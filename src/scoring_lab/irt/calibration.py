"""The IRT calibration: py-irt's fits of the population's answers (cached, kind ``irt-fit``; several
at once in worker processes), the dimension chosen on the validation models, and the endpoints'
abilities with the items fixed, all returned by :func:`calibrate` as one frozen :class:`Calibration`.

Shapes: m models, I items (the pool), k fitness items, d IRT dimensions, n endpoints.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..models.cache import ArtifactCache, array_digest, code_version
from ..profiles.settings import IRTChapterSettings
from . import estimators
from .estimators import AbilityPrior, ItemParameters
from .search_space import SearchSpace

FIT_KIND = "irt-fit"


def fitted_abilities(y: np.ndarray, items: ItemParameters, prior: AbilityPrior | None = None) -> np.ndarray:
    """(m, d) each row of answers ``y`` (m, k)'s MAP ability on ``items`` (k of them, parameters fixed) under
    ``prior``; on all of a model's items, the paper's Gamma, its best proxy for the true ability."""
    return np.stack([estimators.fit_ability(row, items, prior) for row in np.asarray(y, dtype=float)])


RETRIES = 3   # a fit whose variational parameters turn NaN is rerun at half the learning rate, this many times


def _timed_fit(y, dims, epochs, lr, seed):
    """(items, abilities, seconds) of :func:`estimators.fit_items`. py-irt's Adam at the profile's rate can
    diverge on a small population in several dimensions (8 models in 4 did here: pyro then refuses a Gamma
    with a NaN concentration); such a fit is rerun at half the rate, up to ``RETRIES`` times, and the seconds
    count every attempt."""
    t0 = time.perf_counter()
    for attempt in range(RETRIES + 1):
        try:
            items, ability = estimators.fit_items(y, dims, epochs, lr / 2 ** attempt, seed)
            break
        except ValueError as e:
            if "invalid values" not in str(e) or attempt == RETRIES:
                raise
    return items, ability, time.perf_counter() - t0


def _one_thread_fit(y, dims, epochs, lr, seed):
    """:func:`_timed_fit` in a worker process on one thread: py-irt's steps are small, and a fit runs as
    fast on one thread as on two (8.1 s against 8.6 s for 200 epochs of 28 x 1,019 here)."""
    import torch

    torch.set_num_threads(1)
    return _timed_fit(y, dims, epochs, lr, seed)


class IRTFits:
    """py-irt's fits of a population's answers ``correct`` (m, I) 0/1, or of some of its rows, cached by
    the answers, the dimension, ``settings``' epochs and learning rate, and ``seed``."""

    def __init__(self, correct: np.ndarray, settings: IRTChapterSettings, seed: int, cache: ArtifactCache):
        self.correct, self.settings, self.seed, self.cache = correct, settings, seed, cache

    def _inputs(self, dims: int, models) -> tuple[np.ndarray, dict]:
        y = self.correct if models is None else self.correct[np.asarray(models, dtype=int)]
        s = self.settings
        return y.astype(int), {"correct": array_digest(y.astype(np.uint8)), "shape": list(y.shape), "dims": int(dims),
                               "epochs": s.irt_epochs, "lr": s.irt_lr, "seed": self.seed,
                               "code": code_version(estimators.fit_items), "stores": "seconds"}

    def prefit(self, specs) -> None:
        """Run the fits of ``specs`` ((dims, models or None), ...) not yet cached, ``workers`` at a time
        (each fit is one process's work: py-irt's steps are small and leave the other core idle)."""
        todo = {}
        for dims, models in specs:
            y, inputs = self._inputs(dims, models)
            key = self.cache.key(inputs)
            if not self.cache.exists(FIT_KIND, key) and key not in todo:
                todo[key] = (y, int(dims), inputs)
        if not todo:
            return
        s = self.settings
        from joblib import Parallel, delayed

        jobs = (delayed(_one_thread_fit)(y, d, s.irt_epochs, s.irt_lr, self.seed) for y, d, _ in todo.values())
        fits = Parallel(n_jobs=min(s.workers, len(todo)))(jobs) if s.workers > 1 and len(todo) > 1 else \
            [_timed_fit(y, d, s.irt_epochs, s.irt_lr, self.seed) for y, d, _ in todo.values()]
        for (key, (_, _, inputs)), (items, ability, seconds) in zip(todo.items(), fits):
            self.cache.write(FIT_KIND, key, inputs, lambda folder, items=items, ability=ability, seconds=seconds:
                             np.savez(folder / "fit.npz", alpha=items.alpha, beta=items.beta, ability=ability,
                                      seconds=seconds))

    def _fit(self, dims: int, models: np.ndarray | None = None) -> tuple[ItemParameters, np.ndarray, float]:
        y, inputs = self._inputs(dims, models)
        s = self.settings

        def produce(folder):
            items, ability, seconds = _timed_fit(y, dims, s.irt_epochs, s.irt_lr, self.seed)
            np.savez(folder / "fit.npz", alpha=items.alpha, beta=items.beta, ability=ability, seconds=seconds)

        def load(art):
            z = np.load(art.file("fit.npz"))
            return ItemParameters(z["alpha"], z["beta"]), z["ability"], float(z["seconds"])

        value, _ = self.cache.get_or_compute(FIT_KIND, inputs, produce, load)
        return value

    def fit(self, dims: int, models: np.ndarray | None = None) -> tuple[ItemParameters, np.ndarray]:
        """(item parameters over every item, the fitted models' abilities (m, d)) of the fit on the whole
        population (or its rows ``models``), cached."""
        return self._fit(dims, models)[:2]

    def seconds(self, dims: int, models: np.ndarray | None = None) -> float:
        """The wall-clock seconds the fit took when it ran (in its worker process, on one thread)."""
        return self._fit(dims, models)[2]


def dimension_table(y: np.ndarray, items_by_dims: dict[int, ItemParameters], seed: int, priors: dict | None = None,
                    binding_from: int = 1) -> pd.DataFrame:
    """Per tried dimension (``items_by_dims``: {d: the k fitness items' parameters}): the mean log-likelihood
    of the validation models' answers ``y`` (v, k) on half of the items, their abilities fitted (MAP, under
    ``priors`` {d: AbilityPrior}, default N(0, I)) on the other half (a seeded split); ``binds``: whether
    Eq. 2 constrains a merge there (d >= ``binding_from``, one more than the most endpoints a merge has);
    and the chosen one: the highest among those that bind (all of them when none does)."""
    priors = priors or {}
    rng = np.random.default_rng([seed, 4])
    half = rng.permutation(y.shape[1])
    a, b = np.sort(half[: len(half) // 2]), np.sort(half[len(half) // 2:])
    rows = []
    for d, items in items_by_dims.items():
        ll = []
        for row in y:
            g = estimators.fit_ability(row[a], items.subset(a), priors.get(d))
            p = np.clip(items.subset(b).prob(g), 1e-6, 1 - 1e-6)
            ll.append(float(np.mean(row[b] * np.log(p) + (1 - row[b]) * np.log(1 - p))))
        rows.append({"dims": d, "heldout_loglik": float(np.mean(ll)), "binds": d >= binding_from})
    table = pd.DataFrame(rows)
    eligible = table[table["binds"]] if table["binds"].any() else table
    table["chosen"] = table["dims"] == eligible.loc[eligible["heldout_loglik"].idxmax(), "dims"]
    return table


@dataclass(frozen=True)
class Calibration:
    """The IRT model the chapter estimates with: the ``dimension_table`` (dims, heldout_loglik, binds, chosen),
    the chosen ``dims``, the ``items`` (I) fitted on the whole population at that dimension, the ``prior`` every
    ability is fitted under (the population's fitted abilities' mean and spread), and the endpoints'
    abilities with those items fixed: from every item (n, d), the paper's full dataset, and from the fitness
    items alone (n, d), what the searches use (their fitness then depends on no reported answer)."""

    dimension_table: pd.DataFrame
    dims: int
    items: ItemParameters
    prior: AbilityPrior
    endpoint_abilities: np.ndarray
    endpoint_fitness_abilities: np.ndarray

    @property
    def binds(self) -> bool:
        """Whether Eq. 2 constrains every merge of the chapter at the chosen dimension."""
        return bool(self.dimension_table.loc[self.dimension_table["chosen"], "binds"].iloc[0])


def calibrate(fits: IRTFits, correctness: Callable[..., np.ndarray], space: SearchSpace, fit_pos: np.ndarray
              ) -> Calibration:
    """Fit every tried dimension, choose one on the validation models' fitness-item answers, and fit the
    endpoints' abilities on it. ``correctness(recipes, positions, desc)``: (m, k) answers of recipes on
    positions of the pool; ``fit_pos`` (k,) the fitness items' positions."""
    s = fits.settings
    validation = correctness(space.validation(s.validation_models), fit_pos, "validation models")
    fits.prefit([(d, None) for d in s.dims])
    priors = {d: AbilityPrior.of_population(fits.fit(d)[1]) for d in s.dims}
    table = dimension_table(validation, {d: fits.fit(d)[0].subset(fit_pos) for d in s.dims}, fits.seed, priors,
                            len(space.group) + 1)
    dims = int(table.loc[table["chosen"], "dims"].iloc[0])
    items, prior = fits.fit(dims)[0], priors[dims]

    def abilities(positions):
        return fitted_abilities(correctness(space.endpoints(), positions, "abilities"), items.subset(positions),
                                prior)

    fitness_only = abilities(fit_pos)
    return Calibration(table, dims, items, prior, abilities(np.arange(len(items))), fitness_only)
