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
from .items import ItemScorer
from .search_space import SearchSpace

TABLE_KIND = "irt-table"
PCA_VARIANCE = 0.9   # representation clustering keeps the principal components of 90% of the variance


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

    def endpoints_for(self, recipes, abilities: np.ndarray) -> list[np.ndarray]:
        """[(n_r, d)] each recipe's own members' rows of ``abilities`` (n, d): what mp-IRT combines for it."""
        return [abilities[self.space.members_of(r)] for r in recipes]

    def _validation(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """(the validation models' fitness-item answers (v, k_fit), their endpoints' fitness-item abilities)."""
        s = self.settings
        recipes = self.space.validation(s.validation_models)
        y = self.correctness(recipes, self.fit_pos, "validation models")
        return y, self.endpoints_for(recipes, self.calibration.endpoint_fitness_abilities)

    def mixing(self) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.mixing_table` on the validation models' fitness-item answers, from
        random subsets of the searches' size."""
        def compute():
            s = self.settings
            y, ends = self._validation()
            items = self.calibration.items.subset(self.fit_pos)
            k = min(s.fitness_items * len(self.space.group), len(self.fit_pos))
            return evaluation.mixing_table(y, items, ends, k, s.repetitions, s.mixing, self.seed,
                                           self.calibration.prior)

        return self._cached("mixing", {}, compute)

    def extractor_margins(self, chosen: dict[str, float]) -> pd.DataFrame:
        """subset_size, estimator, margin: how far one draw of random subsets moves an estimator's mean absolute
        error over the validation models (the sd, over ``repetitions`` draws, of that mean; fitness items, so no
        test answer sets it), at least one reported item's worth of accuracy (1 / k): the tolerance within which
        another extractor counts as good as random."""
        def compute():
            s = self.settings
            y, ends = self._validation()
            items = self.calibration.items.subset(self.fit_pos)
            err, _ = evaluation.error_rows(y, items, ends, s.extractor_sizes, s.repetitions, self.seed, "margin",
                                           chosen, s.paper_mixing, prior=self.calibration.prior)
            t = pd.DataFrame(err)
            t = t[t["estimator"].isin([estimators.RANDOM, estimators.MP_IRT, estimators.GMP_IRT])]
            per_draw = t.groupby(["subset_size", "estimator", "repetition"], as_index=False)["abs_error"].mean()
            t = per_draw.groupby(["subset_size", "estimator"], as_index=False)["abs_error"].std()
            return t.rename(columns={"abs_error": "spread"}).assign(
                margin=lambda x: x["spread"].clip(lower=1 / len(self.eval_pos)))

        return self._cached("extractor-margins", {"chosen": chosen}, compute)

    def held_out_endpoints(self) -> list[np.ndarray]:
        """The held-out models' own endpoints' full-data abilities, one (n_m, d) each."""
        return self.endpoints_for(self.space.held_out(self.settings.held_out_models),
                                  self.calibration.endpoint_abilities)

    def errors(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.error_tables` of the held-out models' reported answers
        ``held_out`` (e, k), ``chosen``: the chosen c per g- estimator."""
        s = self.settings

        def compute():
            return evaluation.error_tables(held_out, self.calibration.items.subset(self.eval_pos),
                                           self.held_out_endpoints(), s.subset_sizes, s.repetitions,
                                           self.seed, chosen, s.paper_mixing, self.calibration.prior)

        return self._cached("estimators", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def extractors(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.extractor_table` of ``held_out`` (e, k): random items, IRT clustering
        (the items' alpha and beta) and representation clustering (:meth:`features`)."""
        s, items = self.settings, self.calibration.items.subset(self.eval_pos)

        def compute():
            return evaluation.extractor_table(held_out, items, self.held_out_endpoints(), self.features(),
                                              s.extractor_sizes, s.repetitions, self.seed, chosen, s.paper_mixing,
                                              self.calibration.prior)

        return self._cached("extractors", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def features(self) -> dict[str, np.ndarray]:
        """{extractor: (k, f) per reported item}: IRT clustering's (alpha, beta), and the paper's Algorithm 2:
        the endpoints' pooled final-layer embeddings of each response concatenated and reduced by PCA to the
        components that keep ``PCA_VARIANCE`` of the variance."""
        items = self.calibration.items.subset(self.eval_pos)
        embeddings = [self.scorer.embeddings(e, self.eval_pos) for e in self.space.endpoints()]
        return {"IRT clustering": estimators.irt_features(items),
                "representation clustering": estimators.representation_features(embeddings, PCA_VARIANCE,
                                                                                 self.seed)}

    def population_sizes(self, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.evaluation.population_size_table` at the smallest subset size, the IRT refitted
        at the chosen dimension on each of ``population_sizes`` (and the whole population)."""
        def compute():
            s = self.settings
            items_by_size, y_endpoints, priors = self.refits_by_population_size()
            members = [self.space.members_of(r) for r in self.space.held_out(s.held_out_models)]
            return evaluation.population_size_table(items_by_size, y_endpoints, held_out, self.eval_pos,
                                                    min(s.subset_sizes), s.repetitions, self.seed, chosen, members,
                                                    priors)

        return self._cached("population-size", {"held_out": array_digest(held_out.astype(np.uint8))}, compute)

    def refits_by_population_size(self) -> tuple[dict, np.ndarray, dict]:
        """({population size: the IRT's items refitted at the chosen dimension on that many models}, the
        endpoints' correctness (n, items), {population size: the prior of its fitted abilities}), the fits from
        the cache."""
        dims = self.calibration.dims
        members = self.space.population_members(len(self.fits.correct), self.settings.population_sizes)
        self.fits.prefit([(dims, models) for models in members.values()])
        fits = {size: self.fits.fit(dims, models) for size, models in members.items()}
        return ({size: f[0] for size, f in fits.items()}, self.correctness(self.space.endpoints(), None, "endpoints"),
                {size: estimators.AbilityPrior.of_population(f[1]) for size, f in fits.items()})
