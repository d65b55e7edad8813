"""Item response theory for evaluating scoring models on few items (MERGE³, after tinyBenchmarks).

Shapes: m models, I items (test responses), d ability dimensions, n endpoint models.

* The paper's Eq. 1: P(Y_im = 1) = sigmoid(alpha_i . gamma_m - beta_i), alpha_i (d,) the
  dimensions item i needs, beta_i its difficulty, gamma_m (d,) model m's abilities
  (:func:`item_response`, :class:`ItemParameters`).
* py-irt's ``multidim_2pl`` (the fit, :func:`fit_items`) writes the logit as
  sum_d a_id (theta_md - b_id): the same model with alpha_i = a_i and
  beta_i = sum_d a_id b_id (:meth:`ItemParameters.from_py_irt`); its abilities are gamma.
* Estimators of a model's accuracy on all I items from its correctness on a subset
  (:func:`estimate`): the subset's (weighted) mean; p-IRT and gp-IRT (tinyBenchmarks: the model's
  own ability fitted on the subset); mp-IRT and gmp-IRT (the paper's Eqs. 2-5: the merged model's
  ability is sum_j lambda_j gamma_j of the endpoints' full-data abilities, only lambda fitted on the
  subset). Both fit under one prior on the ability (:class:`AbilityPrior`), so mp-IRT is p-IRT
  restricted to the endpoints' span and differs from it only where that span is smaller than the
  ability space (:func:`constrains`). The g- variants mix the observed subset accuracy with weight
  c (the paper's Eq. 5, :func:`mixed_accuracy`; :func:`choose_mixing` picks c on a population's
  models, as tinyBenchmarks does; the paper's code fixes 0.5). :func:`subset_estimates` gives
  every estimator from one subset, the abilities fitted once.
* Subsets with weights (the paper's Extract step and its appendix C.1): random, IRT clustering
  (k-means on the items' (alpha, beta)), representation clustering (the paper's Algorithm 2: the
  endpoints' embeddings of each response concatenated, reduced by PCA, k-means,
  :func:`representation_features`); each chosen item stands for its cluster, weighted by the
  cluster's share.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

RANDOM, P_IRT, GP_IRT, MP_IRT, GMP_IRT = "random", "p-IRT", "gp-IRT", "mp-IRT", "gmp-IRT"
ESTIMATORS = (RANDOM, P_IRT, GP_IRT, MP_IRT, GMP_IRT)


@dataclass(frozen=True)
class ItemParameters:
    """alpha (I, d) discriminations and beta (I,) difficulties, in the paper's Eq. 1 form."""

    alpha: np.ndarray
    beta: np.ndarray

    def __post_init__(self):
        if self.alpha.ndim != 2 or self.beta.shape != (self.alpha.shape[0],):
            raise ValueError(f"alpha must be (I, d) and beta (I,), got {self.alpha.shape} and {self.beta.shape}")

    @property
    def dims(self) -> int:
        return int(self.alpha.shape[1])

    def __len__(self) -> int:
        return int(self.alpha.shape[0])

    def subset(self, items) -> "ItemParameters":
        items = np.asarray(items, dtype=int)
        return ItemParameters(self.alpha[items], self.beta[items])

    def prob(self, gamma: np.ndarray) -> np.ndarray:
        """P(correct) of ability (d,) on every item (I,), or of abilities (m, d) (m, I)."""
        return item_response(gamma, self.alpha, self.beta)

    @classmethod
    def from_py_irt(cls, disc, diff) -> "ItemParameters":
        """py-irt's (I, d) discriminations a and difficulties b (logit sum_d a_d (theta_d - b_d))."""
        a, b = np.asarray(disc, dtype=float), np.asarray(diff, dtype=float)
        if a.ndim == 1:
            a, b = a[:, None], b[:, None]
        return cls(a, (a * b).sum(axis=1))


def item_response(gamma: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The paper's Eq. 1: sigmoid(alpha_i . gamma - beta_i); gamma (d,) -> (I,), (m, d) -> (m, I)."""
    z = np.asarray(gamma, dtype=float) @ np.asarray(alpha, dtype=float).T - np.asarray(beta, dtype=float)
    return expit(np.clip(z, -30, 30))


def _neg_log_likelihood(p: np.ndarray, y: np.ndarray, eps: float = 1e-10) -> float:
    return -float(np.sum(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))


@dataclass(frozen=True)
class AbilityPrior:
    """A normal prior on a model's abilities, N(``mean``, diag(``sd``^2)), each (d,): the one prior every
    ability in the chapter is fitted under, p-IRT's and mp-IRT's alike (:func:`fit_ability`,
    :func:`fit_lambda`). :meth:`standard` is N(0, I); :meth:`of_population` the mean and spread of a
    fitted population's abilities (an empirical-Bayes stand-in for py-irt's hierarchical prior, whose
    mean and precision are learned with the fit)."""

    mean: np.ndarray
    sd: np.ndarray

    def __post_init__(self):
        if self.mean.shape != self.sd.shape or self.mean.ndim != 1 or not np.all(self.sd > 0):
            raise ValueError(f"a prior needs mean and sd of the same (d,) shape, sd > 0; got {self.mean.shape}, "
                             f"{self.sd.shape}")

    @property
    def dims(self) -> int:
        return len(self.mean)

    @classmethod
    def standard(cls, dims: int) -> "AbilityPrior":
        return cls(np.zeros(dims), np.ones(dims))

    @classmethod
    def of_population(cls, abilities: np.ndarray, floor: float = 0.1) -> "AbilityPrior":
        """Mean and sd (ddof 1, at least ``floor``) of fitted abilities (m, d)."""
        a = np.asarray(abilities, dtype=float)
        return cls(a.mean(axis=0), np.maximum(a.std(axis=0, ddof=1), floor))

    def penalty(self, gamma: np.ndarray) -> float:
        """-log prior density of ``gamma`` (d,), up to a constant."""
        z = (np.asarray(gamma) - self.mean) / self.sd
        return 0.5 * float(z @ z)


def _prior(prior: AbilityPrior | None, dims: int) -> AbilityPrior:
    prior = AbilityPrior.standard(dims) if prior is None else prior
    if prior.dims != dims:
        raise ValueError(f"a prior of {prior.dims} dimension(s) for items of {dims}")
    return prior


def fit_ability(y: np.ndarray, items: ItemParameters, prior: AbilityPrior | None = None) -> np.ndarray:
    """(d,) p-IRT's ability: the maximum a-posteriori ability given correctness ``y`` (k,) on ``items``
    (k of them, fixed) under ``prior`` (default N(0, I)). Without a prior an all-correct or all-wrong
    subset has no finite answer, and at 10 items that is common."""
    y = np.asarray(y, dtype=float)
    if len(y) != len(items):
        raise ValueError(f"{len(y)} responses for {len(items)} items")
    prior = _prior(prior, items.dims)

    def loss(g):
        return _neg_log_likelihood(items.prob(g), y) + prior.penalty(g)

    return minimize(loss, prior.mean.copy(), method="BFGS").x


def fit_lambda(y: np.ndarray, items: ItemParameters, endpoints: np.ndarray, prior: AbilityPrior | None = None
               ) -> np.ndarray:
    """(n,) mp-IRT's interpolation coefficients (the paper's Eqs. 2-3): lambda maximising the posterior of
    the ability sum_j lambda_j endpoints[j] given ``y`` (k,) on ``items``, ``endpoints`` (n, d) the
    endpoints' abilities, under the same ``prior`` on that ability as :func:`fit_ability`'s. So mp-IRT
    is p-IRT restricted to the endpoints' span: where the span is the whole ability space (n >= d, the
    endpoints' abilities of full rank) the two give the same ability; only where n < d does Eq. 2
    constrain. lambda itself is unconstrained, as in the paper's reference code; where n > d it is
    not unique, the ability is."""
    y, g = np.asarray(y, dtype=float), np.asarray(endpoints, dtype=float)
    if g.ndim != 2 or g.shape[1] != items.dims:
        raise ValueError(f"endpoint abilities must be (n, {items.dims}), got {g.shape}")
    prior = _prior(prior, items.dims)

    def loss(lam):
        gamma = lam @ g
        return _neg_log_likelihood(items.prob(gamma), y) + prior.penalty(gamma)

    return minimize(loss, np.full(len(g), 1.0 / len(g)), method="BFGS").x


def constrains(endpoints: np.ndarray) -> bool:
    """Whether Eq. 2 constrains a merge of endpoints with abilities ``endpoints`` (n, d): their span is
    smaller than the ability space (rank < d)."""
    g = np.asarray(endpoints, dtype=float)
    return int(np.linalg.matrix_rank(g)) < g.shape[1]


def ability_estimate(estimator: str, y_sub: np.ndarray, subset: np.ndarray, items: ItemParameters,
                     endpoints: np.ndarray | None = None, prior: AbilityPrior | None = None) -> np.ndarray:
    """(d,) the ability an IRT estimator gives a model from correctness ``y_sub`` on ``subset`` (positions
    in ``items``): p-/gp-IRT fit it (:func:`fit_ability`), mp-/gmp-IRT set it to lambda . endpoints with
    lambda fitted (:func:`fit_lambda`); both under ``prior`` (default N(0, I))."""
    y_sub, subset = np.asarray(y_sub, dtype=float), np.asarray(subset, dtype=int)
    if len(y_sub) != len(subset) or len(subset) == 0:
        raise ValueError(f"{len(y_sub)} responses for a subset of {len(subset)} items")
    sub_items = items.subset(subset)
    if estimator in (P_IRT, GP_IRT):
        return fit_ability(y_sub, sub_items, prior)
    if estimator in (MP_IRT, GMP_IRT):
        if endpoints is None:
            raise ValueError(f"{estimator} needs the endpoints' abilities")
        return fit_lambda(y_sub, sub_items, endpoints, prior) @ np.asarray(endpoints, dtype=float)
    raise ValueError(f"{estimator!r} has no ability; IRT estimators: {', '.join(ESTIMATORS[1:])}")


def irt_accuracy(y_sub: np.ndarray, subset: np.ndarray, items: ItemParameters, gamma: np.ndarray) -> float:
    """The paper's Eq. 4 (and p-IRT's): (sum of y over the subset + sum of P(correct | gamma) over the rest)
    / I, i.e. tau * subset mean + (1 - tau) * mean prediction on the rest, tau = k / I."""
    rest = np.setdiff1d(np.arange(len(items)), subset)
    return float((np.sum(y_sub) + items.subset(rest).prob(gamma).sum()) / len(items))


def estimate(estimator: str, y_sub: np.ndarray, subset: np.ndarray, items: ItemParameters,
             weights: np.ndarray | None = None, endpoints: np.ndarray | None = None, c: float = 0.5,
             prior: AbilityPrior | None = None) -> float:
    """One estimator's accuracy over all ``len(items)`` items from correctness ``y_sub`` on ``subset``
    (positions), ``weights`` the subset's (summing to 1; None: uniform).

    random: sum_i w_i y_i; p-IRT: (sum over the subset of y + sum over the rest of p(gamma_hat)) / I with
    gamma_hat fitted on the subset; mp-IRT: the same with gamma = sum_j lambda_j gamma_j (the paper's Eq. 4);
    gp-IRT / gmp-IRT: c * sum_i w_i y_i + (1 - c) * p-IRT / mp-IRT (its Eq. 5)."""
    y_sub, subset = np.asarray(y_sub, dtype=float), np.asarray(subset, dtype=int)
    if len(y_sub) != len(subset) or len(subset) == 0:
        raise ValueError(f"{len(y_sub)} responses for a subset of {len(subset)} items")
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    w = np.full(len(subset), 1.0 / len(subset)) if weights is None else np.asarray(weights, dtype=float)
    observed = float(w @ y_sub)
    if estimator == RANDOM:
        return observed
    irt = irt_accuracy(y_sub, subset, items, ability_estimate(estimator, y_sub, subset, items, endpoints, prior))
    return float(mixed_accuracy(observed, irt, c)) if estimator in (GP_IRT, GMP_IRT) else float(irt)


def mixed_accuracy(observed: float, irt: float, c: float) -> float:
    """The paper's Eq. 5, gp- and gmp-IRT's accuracy: c * the subset's (weighted) mean ``observed`` + (1 - c) *
    the IRT estimate ``irt`` (p-IRT's or mp-IRT's)."""
    return c * observed + (1 - c) * irt


def subset_estimates(y_sub: np.ndarray, subset: np.ndarray, items: ItemParameters, endpoints: np.ndarray,
                     weights: np.ndarray | None = None, mixing=(), prior: AbilityPrior | None = None
                     ) -> tuple[dict, dict]:
    """Every estimator at once from correctness ``y_sub`` (k,) on ``subset`` (k positions in ``items``), the
    abilities fitted once: ({(estimator, c): accuracy}, {"p": p-IRT's gamma (d,), "mp": mp-IRT's gamma (d,)}).
    c is None for random, p-IRT and mp-IRT; gp- and gmp-IRT come once per c in ``mixing``. ``endpoints``
    (n, d) the endpoints' abilities, ``weights`` (k,) the subset's (None: uniform), ``prior`` the abilities'
    (:func:`fit_ability`)."""
    w = np.full(len(subset), 1 / len(subset)) if weights is None else np.asarray(weights)
    observed = float(w @ y_sub)
    gamma_p = ability_estimate(P_IRT, y_sub, subset, items, prior=prior)
    gamma_mp = ability_estimate(MP_IRT, y_sub, subset, items, endpoints, prior)
    p, mp = irt_accuracy(y_sub, subset, items, gamma_p), irt_accuracy(y_sub, subset, items, gamma_mp)
    out = {(RANDOM, None): observed, (P_IRT, None): p, (MP_IRT, None): mp}
    for c in mixing:
        out[(GP_IRT, float(c))] = mixed_accuracy(observed, p, c)
        out[(GMP_IRT, float(c))] = mixed_accuracy(observed, mp, c)
    return out, {"p": gamma_p, "mp": gamma_mp}


def choose_mixing(errors_by_c: dict[float, float]) -> float:
    """The c of the smallest mean absolute error over a population's models ({c: error}); ties: the
    smaller c."""
    if not errors_by_c:
        raise ValueError("no mixing coefficients to choose from")
    return min(sorted(errors_by_c), key=lambda c: errors_by_c[c])


# ---- the Extract step: subsets with weights -------------------------------------------
def random_subset(n_items: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(k positions, uniform weights summing to 1), seeded."""
    if not 0 < k <= n_items:
        raise ValueError(f"a subset of {k} from {n_items} items")
    chosen = np.sort(np.random.default_rng(seed).choice(n_items, size=k, replace=False))
    return chosen, np.full(k, 1.0 / k)


def cluster_subset(features: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(k positions, weights summing to 1): k-means on ``features`` (I, f); each cluster is represented by
    the item nearest its centre, weighted by the cluster's share of the items (tinyBenchmarks' anchor
    points; the paper's appendix C.1). ``features``: items' IRT parameters or responses' embeddings."""
    from sklearn.cluster import KMeans

    x = np.asarray(features, dtype=float)
    if not 0 < k <= len(x):
        raise ValueError(f"{k} clusters of {len(x)} items")
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
    chosen, weights = [], []
    for j in range(k):
        members = np.flatnonzero(km.labels_ == j)
        centre = km.cluster_centers_[j]
        chosen.append(int(members[np.argmin(((x[members] - centre) ** 2).sum(axis=1))]))
        weights.append(len(members) / len(x))
    order = np.argsort(chosen)
    return np.asarray(chosen)[order], np.asarray(weights)[order]


def representation_features(embeddings, components: float, seed: int = 0) -> np.ndarray:
    """(I, c) the paper's Algorithm 2 before its k-means: each item's embeddings under every endpoint
    (``embeddings``: a list of (I, H), one an endpoint) concatenated (I, n H) and projected on their first
    principal components (scikit-learn's PCA): ``components`` of them (at most min(I, n H)), or, when below
    1, as many as keep that share of the variance."""
    from sklearn.decomposition import PCA

    x = np.concatenate([np.asarray(e, dtype=float) for e in embeddings], axis=1)
    c = float(components) if components < 1 else int(min(components, *x.shape))
    return PCA(n_components=c, svd_solver="full", random_state=seed).fit_transform(x)


def irt_features(items: ItemParameters) -> np.ndarray:
    """(I, d + 1) [alpha, beta] per item: what IRT clustering clusters."""
    return np.column_stack([items.alpha, items.beta])


# ---- the fit: py-irt ---------------------------------------------------------------------
def fit_items(correct: np.ndarray, dims: int, epochs: int = 2000, lr: float = 0.1, seed: int = 0
              ) -> tuple[ItemParameters, np.ndarray]:
    """(item parameters, abilities (m, d)) of a multidimensional 2PL fitted by py-irt's variational
    inference to ``correct`` (m models x I items, 0/1)."""
    import random

    import pandas as pd
    import pyro
    import torch
    from py_irt import anchor_utils
    from py_irt.config import IrtConfig
    from py_irt.dataset import Dataset
    from py_irt.training import IrtModelTrainer

    y = np.asarray(correct)
    if y.ndim != 2 or not np.isin(y, (0, 1)).all():
        raise ValueError("the correctness matrix must be (models x items) of 0/1")
    frame = pd.DataFrame(y.astype(int), columns=[f"i{j}" for j in range(y.shape[1])])
    frame.insert(0, "model", [f"m{j}" for j in range(y.shape[0])])
    dataset = Dataset.from_pandas(frame, subject_column="model", item_columns=list(frame.columns[1:]))
    pyro.clear_param_store()
    config = IrtConfig(model_type="multidim_2pl", epochs=epochs, lr=lr, dims=dims, seed=seed, log_every=10 ** 9)
    # py-irt's Python API leaves its config's seed unused (only its CLI seeds), so two fits of the same data
    # differed; seeded here, with the caller's random states put back afterwards
    py_state, np_state = random.getstate(), np.random.get_state()
    quiet, anchor_utils.console.quiet = anchor_utils.console.quiet, True   # "No anchor items found" despite
    try:                                                                    # verbose=False: a page's noise
        with torch.random.fork_rng(devices=[]):
            pyro.set_rng_seed(seed)
            trainer = IrtModelTrainer(data_path=None, config=config, dataset=dataset, verbose=False)
            trainer.train(epochs=epochs)
    finally:
        anchor_utils.console.quiet = quiet
        random.setstate(py_state)
        np.random.set_state(np_state)
    out = trainer.export(None)
    items = [dataset.item_id_to_ix[f"i{j}"] for j in range(y.shape[1])]
    subjects = [dataset.subject_id_to_ix[f"m{j}"] for j in range(y.shape[0])]
    disc, diff = np.asarray(out["disc"])[items], np.asarray(out["diff"])[items]
    return ItemParameters.from_py_irt(disc, diff), np.asarray(out["ability"])[subjects]
