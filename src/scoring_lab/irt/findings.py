"""The IRT chapter's findings in words: what the chosen c values mean, the summary of what held, and
which of the MERGE3 paper's claims held here, each judged by a paired test
(:mod:`~scoring_lab.irt.judging`) on the chapter's units: estimator errors over (held-out model,
subset) units, accuracies over test items, figures that follow from settings marked by construction."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import claims, published, verdicts
from . import judging
from .estimators import GMP_IRT, GP_IRT, MP_IRT, P_IRT, RANDOM
from .evaluation import ABILITY_FAMILIES
from .report import OWN_SCORERS

if TYPE_CHECKING:
    from .study import IRTStudy

# "About 50-fold": held at 40x or more (the paper's 52x within a fifth below).
FOLD_NEEDED = 40.0
# "About 15 models": a refitted population of at most this many models is tested against the whole one.
ABOUT_ENOUGH = 16


def mixing_text(study: IRTStudy) -> str:
    """What the chosen c values mean, in a sentence per estimator (c = 0: the g- estimator is the plain one)."""
    return " ".join(f"The chosen c for {e} is {c:g}" + (f", so {e} is {e.replace('g', '', 1)} here." if c == 0
                                                         else ".") for e, c in sorted(study.chosen_mixing().items()))


def summary_text(study: IRTStudy, errors: pd.DataFrame, results: pd.DataFrame, compute: pd.DataFrame,
                 agreement: pd.DataFrame) -> str:
    """The chapter's findings in a few sentences, every number from the results."""
    small = int(errors["subset_size"].min())
    mean = errors[errors["subset_size"] == small].groupby("estimator")["abs_error"].mean().sort_values()
    res = results.set_index("model")
    c = compute.set_index("run")
    full, ga, nsga = study.runs.full.label, study.runs.estimated.label, study.runs.per_task.label
    best_base = res.loc[list(study.baselines()), "test_accuracy"]
    lines = [
        f"At {small} items, the estimators' mean absolute errors on the held-out merged models run from "
        f"{mean.iloc[0]:.3f} ({mean.index[0]}) to {mean.iloc[-1]:.3f} ({mean.index[-1]}): " +
        ", ".join(f"{e} {v:.3f}" for e, v in mean.items()) + ".",
        f"The GA with {study.settings.ga_estimator} fitness scored {int(c.loc[ga, 'items_scored']):,} items against "
        f"{int(c.loc[full, 'items_scored']):,} for the full-data GA ({c.loc[ga, 'flops_ratio']:.1f}x fewer FLOPs) "
        f"and its chosen merge reaches test accuracy {res.loc[ga, 'test_accuracy']:.3f}, against "
        f"{res.loc[full, 'test_accuracy']:.3f} for the full-data search and {res.loc[nsga, 'test_accuracy']:.3f} for "
        f"NSGA-II's chosen member.",
        f"The best standard merge or endpoint is {best_base.idxmax()} at {best_base.max():.3f}; the per-task scorers, "
        f"each on its own task, reach {res.loc[OWN_SCORERS, 'test_accuracy']:.3f}.",
    ]
    a = agreement.set_index("run")
    lines.append(f"The GA's estimated fitness ranked its candidates with Spearman rho {a.loc[ga, 'spearman']:.2f} "
                 f"against their true validation accuracy; the model it chose looked like "
                 f"{a.loc[ga, 'chosen_estimated']:.3f} and is {a.loc[ga, 'chosen_true']:.3f} on all validation items "
                 f"(a search's best estimate is optimistic: it is the maximum of noisy estimates).")
    return " ".join(lines)


def irt_claims(study: IRTStudy, errors: pd.DataFrame, similarity: pd.DataFrame, extractors: pd.DataFrame,
               population: pd.DataFrame, results: pd.DataFrame, compute: pd.DataFrame) -> list[claims.Claim]:
    """Which of the MERGE3 paper's claims held here, each judged by :mod:`~scoring_lab.irt.judging`:
    estimator errors paired over (held-out model, subset) units, accuracies over test items."""
    cfg, chosen = study.profile.claims, study.chosen_mixing()
    r, seed = cfg.n_resamples, cfg.seed
    small = int(errors["subset_size"].min())
    mean = errors.groupby(["estimator", "subset_size"])["abs_error"].mean().unstack()
    same = _coincide_text(chosen)

    def at(*names):
        return ", ".join(f"{e} {mean.loc[e, small]:.3f}" for e in names)

    pairs, dropped = judging.distinct_pairs([(MP_IRT, P_IRT), (GMP_IRT, GP_IRT)], chosen)
    v = judging.compare_units(errors, pairs, "abs_error", verdicts.LESS, judging.MAE, r, seed)
    out = [claims.judged("irt", "mp-IRT and gmp-IRT estimate a merged model's accuracy with lower error than p-IRT "
                         "and gp-IRT (Fig. 3)", "lower at every subset size (figure, no numbers)", v,
                         _join(f"mean absolute error at {small} items: {at(MP_IRT, GMP_IRT, P_IRT, GP_IRT)}; "
                               "comparisons: " + ", ".join(f"{a} vs {b}" for a, b in pairs) + " at every size",
                               same, "; ".join(dropped)))]
    irt = [e for e in dict.fromkeys(judging.canonical(e, chosen) for e in (P_IRT, GP_IRT, MP_IRT, GMP_IRT))]
    v = judging.compare_units(errors, [(e, RANDOM) for e in irt], "abs_error", verdicts.LESS, judging.MAE, r, seed)
    out.append(claims.judged("irt", "Every IRT estimator beats the random-subset mean", "all of them (Fig. 3)", v,
                             _join(f"{len(irt)} distinct IRT estimators ({', '.join(irt)}) against the random mean "
                                   f"({mean.loc[RANDOM, small]:.3f} at {small} items) at every size", same)))
    out.append(_abilities_claim(study, similarity, small, r, seed))
    out.append(_extractor_claim(study, chosen, same, cfg.equivalence_margin))
    out.append(_population_claim(study, chosen, cfg.equivalence_margin, r, seed))
    out.append(_compute_claim(study, compute))
    out += _accuracy_claims(study, results, cfg.equivalence_margin, r, seed)
    return out


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _coincide_text(chosen: dict[str, float]) -> str:
    same = [f"{e} is {judging.PLAIN[e]} (chosen c = 0)" for e in sorted(chosen) if judging.canonical(e, chosen) != e]
    return ("here " + " and ".join(same) + ": they coincide and count once") if same else ""


def _abilities_claim(study: IRTStudy, similarity: pd.DataFrame, small: int, r: int, seed: int) -> claims.Claim:
    mp, p = ABILITY_FAMILIES["mp"], ABILITY_FAMILIES["p"]
    one = study.dims == 1
    value, direction = ("distance", verdicts.LESS) if one else ("cosine", verdicts.GREATER)
    v = judging.compare_units(similarity, [(mp, p)], value, direction,
                              judging.MEAN_DISTANCE if one else judging.MEAN_COSINE, r, seed)
    m = similarity.groupby(["estimator", "subset_size"])[["cosine", "distance"]].mean()
    why = (f"with {study.dims} IRT dimension the cosine is only a sign, so the distance to the full-data ability is "
           "compared (lower is closer)" if one else "the cosine with the full-data ability (higher is closer)")
    return claims.judged("irt", "mp/gmp-IRT's abilities are closer to the full-data abilities than p/gp-IRT's "
                         "(Fig. 4)", "higher cosine at 10 and 20 items", v,
                         f"{why}; at {small} items: cosine {m.loc[(mp, small), 'cosine']:.3f} vs "
                         f"{m.loc[(p, small), 'cosine']:.3f}, distance {m.loc[(mp, small), 'distance']:.3f} vs "
                         f"{m.loc[(p, small), 'distance']:.3f}; units with an undefined cosine left out")


def _extractor_claim(study: IRTStudy, chosen: dict[str, float], same: str, margin: float) -> claims.Claim:
    units = study.extractor_units()
    names = list(dict.fromkeys(judging.canonical(e, chosen) for e in (RANDOM, MP_IRT, GMP_IRT)))
    samples = {}
    for e in names:
        t = units[units["estimator"] == e].drop(columns="estimator").rename(columns={"extractor": "estimator"})
        for c in ("IRT clustering", "representation clustering"):
            samples.update({(e, c, n): s for n, s in judging.unit_scores(t, "random", c, "abs_error").items()})
    v = judging.equivalent_units(samples, margin)
    return claims.judged("irt", "Uniform random extraction is as good as clustering (appendix C.1)", "as effective",
                         v, _join(f"cells: subset size x estimator ({', '.join(names)}) x clustering (IRT, "
                                  "representation); random items' mean absolute error minus clustering's on the "
                                  "same (held-out model, repetition) units; the margin is the profile's "
                                  f"equivalence margin, ±{margin:g} accuracy", same))


def _population_claim(study: IRTStudy, chosen: dict[str, float], margin: float, r: int, seed: int) -> claims.Claim:
    claim, paper = "About 15 models suffice for a stable IRT fit (tinyBenchmarks, cited)", "about 15"
    units = study.population_units()
    full = int(units["population"].max())
    smaller = [k for k in sorted(units["population"].unique()) if k < full and k <= ABOUT_ENOUGH]
    if full <= ABOUT_ENOUGH or not smaller:
        why = (f"the whole population has only {full} models" if full <= ABOUT_ENOUGH else
               f"no refitted population of at most {ABOUT_ENOUGH} models (irt.population_sizes)")
        return claims.not_tested("irt", claim, paper, f"not reachable here: {why}")
    k, e = smaller[-1], judging.canonical(GMP_IRT, chosen)
    t = units[units["estimator"] == e].pivot_table(index=["repetition", "model"], columns="population",
                                                   values="abs_error")
    v = judging.no_worse_units(t[k].to_numpy(float), t[full].to_numpy(float), margin, r, seed,
                               f"{len(t)} units ({units['model'].nunique()} held-out models x "
                               f"{units['repetition'].nunique()} subsets)")
    return claims.judged("irt", claim, paper, v, f"{e}'s error at {int(units['subset_size'].min())} items with the "
                         f"IRT fitted on {k} models minus on all {full} (same units): {t[k].mean():.3f} vs "
                         f"{t[full].mean():.3f}; held when at most {margin:g} worse (the profile's equivalence margin)")


def _compute_claim(study: IRTStudy, compute: pd.DataFrame) -> claims.Claim:
    c = compute.set_index("run")
    ratio = float(c.loc[study.runs.full.label, "flops"] / c.loc[study.runs.estimated.label, "flops"])
    pool, subset = len(study.fit_pos), len(study.fitness_subset())
    pf = published.merge3_figures()["fitness_tflops"]
    claim, paper = ("Estimated fitness cuts the fitness computation about 50-fold",
                    f"{pf['full'] / pf['merge3']:.0f}x (4e6 vs 0.077e6 TFLOPs)")
    why = (f"the FLOPs ratio follows from how many items each fitness scores ({pool} fitness items against a "
           f"subset of {subset}; the paper's 1,000/20), not from training")
    reason = verdicts.reachable(FOLD_NEEDED, pool / subset, "the fitness pool over the subset")
    if reason:
        return claims.Claim("irt", claim, paper, f"{ratio:.1f}x FLOPs", verdicts.NOT_TESTED, f"{reason}; {why}",
                            verdicts.BY_CONSTRUCTION)
    return claims.by_construction("irt", claim, paper, f"{ratio:.1f}x FLOPs",
                                  "held" if ratio >= FOLD_NEEDED else "not held", f"{why}; held at {FOLD_NEEDED:g}x "
                                  "or more", ratio, f"the ratio against {FOLD_NEEDED:g}x")


def _accuracy_claims(study: IRTStudy, results: pd.DataFrame, margin: float, r: int, seed: int) -> list[claims.Claim]:
    found = study.searches()
    runs = study.runs
    y = {run: study.test_correct(found[run].chosen) for run in runs}
    task = study.pool.task[study.eval_pos]
    res = results.set_index("model")
    out = []
    full, ga = runs.full.label, runs.estimated.label
    v = judging.close_to_accuracy(judging.by_task(y[runs.estimated], y[runs.full], task, study.group), margin, r, seed)
    out.append(claims.judged("irt", "Evolution on estimated fitness comes close to evolution on full-data fitness",
                             "0.34-0.42 vs 0.49 (Japanese GSM8K, Table 7)", v,
                             f"test accuracy of the chosen models, {res.loc[ga, 'test_accuracy']:.3f} vs "
                             f"{res.loc[full, 'test_accuracy']:.3f}; held when the estimated-fitness search is at most "
                             f"{margin:g} below (one-sided, the profile's equivalence margin), above is fine"))
    base = study.baselines()
    comparisons = {n: judging.by_task(y[runs.estimated], study.test_correct(b), task, study.group)
                   for n, b in base.items()}
    best = max(base, key=lambda n: res.loc[n, "test_accuracy"])
    v = judging.compare_many(comparisons, best, verdicts.GREATER, r, seed)
    held = [n for n, h in zip(base, v.held_each) if h]
    out.append(claims.judged("irt", "The evolved merge beats the endpoints and the standard merges (Figs. 5-6)",
                             "above all of them", v,
                             f"test accuracy over all {len(study.group)} tasks' items, {study.settings.ga_estimator} GA "
                             f"{res.loc[ga, 'test_accuracy']:.3f} against " + ", ".join(
                                 f"{n} {res.loc[n, 'test_accuracy']:.3f}" for n in base) +
                             f"; effect against the best of them, {best}; above after Holm: "
                             f"{', '.join(held) if held else 'none'}"))
    nsga = y[runs.per_task]
    per_task = {t: judging.by_task(nsga, study.test_correct(e), task, study.group)[t]
                for t, e in zip(study.group, study.space.endpoints())}
    parts = {t: judging.compare_accuracy({t: s}, verdicts.GREATER, r, seed) for t, s in per_task.items()}
    overall = judging.compare_accuracy(per_task, verdicts.GREATER, r, seed)
    v = verdicts.compare_all(list(parts.values()), overall)
    t1 = published.merge3_table("table1")[0].set_index("model")
    own = res.loc[OWN_SCORERS]
    out.append(claims.judged("irt", "The multi-objective merge beats each task's own model on its task (Table 1)",
                             f"{int((t1.loc['MERGE3'] > t1.loc['Finetuned']).sum())} of 4 languages", v,
                             "NSGA-II's chosen model against each endpoint on its own task's test items: " + ", ".join(
                                 f"{t} {res.loc[runs.per_task.label, t]:.3f} vs {own[t]:.3f}" for t in study.group) +
                             "; effect: all tasks' items pooled"))
    return out
