"""The estimators judged on the study's own models: which answers, items and abilities each table of
:mod:`~scoring_lab.irt.evaluation` is computed from, and the tables cached (kind ``irt-table``) by
the IRT fit, the population's answers, the settings, the seed and the held-out models' answers.

Shapes: I items (the pool), k_fit fitness and k reported items, e held-out models, n endpoints.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable

import numpy as np
import pandas as pd

from ..models.cache import ArtifactCache, array_digest, code_version
from ..profiles.settings import IRTChapterSettings
from . import estimators, evaluation
from .calibration import Calibration, IRTFits, calibrate
from .items import ItemScorer, Recipe
from .search_space import SearchSpace

TABLE_KIND = "irt-table"


class EvaluationTables:
    """The estimator tables of a calibrated study: its ``calibration`` and ``fits``, the ``space`` its models
    come from, ``correctness(recipes, positions, desc)`` (m, k) their answers, ``scorer`` for the items'
    embeddings, the fitness and reported items' positions ``fit_pos`` (k_fit,) and ``eval_pos`` (k,)."""

    def __init__(self, calibration: Calibration, fits: IRTFits, space: SearchSpace,
                 correctness: Callable[..., np.ndarray], scorer: ItemScorer, fit_pos: np.ndarray,
                 eval_pos: np.ndarray, settings: IRTChapterSettings, seed: int, cache: ArtifactCache):
        self.calibration, self.fits, self.space = calibration, fits, space
        self.correctness, self.scorer = correctness, scorer
        self.fit_pos, self.eval_pos = fit_pos, eval_pos
        self.settings, self.seed, self.cache = settings, seed, cache

    def _cached(self, name: str, inputs: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        def produce(folder):
            compute().to_csv(folder / "table.csv", index=False)

        items = self.calibration.items
        full = {"table": name, "fit": array_digest(items.alpha, items.beta), "settings": asdict(self.settings),
                "population": array_digest(self.fits.correct.astype(np.uint8)), "seed": self.seed,
                "code": code_version(estimators, evaluation, EvaluationTables, calibrate, IRTFits, SearchSpace,
                                     ItemScorer), **inputs}
        value, _ = self.cache.get_or_compute(TABLE_KIND, full, produce, lambda art: pd.read_csv(art.file("table.csv")))
        return value

    def mixing(self) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.mixing_table` on the validation models' fitness-item answers, from
        random subsets of the searches' size."""
        def compute():
            s = self.settings
            y = self.correctness(self.space.validation(s.validation_models), self.fit_pos, "validation models")
            items = self.calibration.items.subset(self.fit_pos)
            k = min(s.fitness_items * len(self.space.group), len(self.fit_pos))
            return evaluation.mixing_table(y, items, self.calibration.endpoint_fitness_abilities, k, s.repetitions,
                                           s.mixing, self.seed)

        return self._cached("mixing", {}, compute)

    def errors(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.error_tables` of the held-out models' reported answers
        ``held_out`` (e, k), ``chosen``: the chosen c per g- estimator."""
        s = self.settings

        def compute():
            return evaluation.error_tables(held_out, self.calibration.items.subset(self.eval_pos),
                                           self.calibration.endpoint_abilities, s.subset_sizes, s.repetitions,
                                           self.seed, chosen, s.paper_mixing)

        return self._cached("estimators", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def extractors(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.extractor_table` of ``held_out`` (e, k): random items, IRT clustering
        (the items' alpha and beta) and representation clustering (the responses' pooled embeddings under the
        pre-trained encoder)."""
        s, items = self.settings, self.calibration.items.subset(self.eval_pos)

        def compute():
            features = {"IRT clustering": estimators.irt_features(items),
                        "representation clustering": self.scorer.embeddings(Recipe(()), self.eval_pos)}
            return evaluation.extractor_table(held_out, items, self.calibration.endpoint_abilities, features,
                                              s.extractor_sizes, s.repetitions, self.seed, chosen, s.paper_mixing)

        return self._cached("extractors", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def population_sizes(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.population_size_table` at the smallest subset size, the IRT refitted
        at the chosen dimension on each of ``population_sizes`` (and the whole population)."""
        def compute():
            s = self.settings
            items_by_size, y_endpoints = self.refits_by_population_size()
            return evaluation.population_size_table(items_by_size, y_endpoints, held_out, self.eval_pos,
                                                    min(s.subset_sizes), s.repetitions, self.seed, chosen)

        return self._cached("population-size", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def refits_by_population_size(self) -> tuple[dict, np.ndarray]:
        """({population size: the IRT's items refitted at the chosen dimension on that many models}, the
        endpoints' correctness (3, items)), the fits from the cache."""
        dims = self.calibration.dims
        members = self.space.population_members(len(self.fits.correct), self.settings.population_sizes)
        self.fits.prefit([(dims, models) for models in members.values()])
        items_by_size = {size: self.fits.fit(dims, models)[0] for size, models in members.items()}
        return items_by_size, self.correctness(self.space.endpoints(), None, "endpoints")
