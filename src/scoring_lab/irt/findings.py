"""The IRT chapter's findings in words: what the chosen c values mean, the summary of what held, and
which of the MERGE3 paper's claims held here, each computed from the chapter's tables and the study
(its typed search runs name the searches' rows)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import claims, published
from .estimators import GMP_IRT, GP_IRT, MP_IRT, P_IRT, RANDOM
from .evaluation import ABILITY_FAMILIES
from .report import OWN_SCORERS

if TYPE_CHECKING:
    from .study import IRTStudy


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
    """Which of the MERGE3 paper's claims held here, each computed from the chapter's results."""
    out = []
    small = min(errors["subset_size"])
    mean = errors.groupby(["estimator", "subset_size"])["abs_error"].mean().unstack()
    sizes = list(mean.columns)
    core = [RANDOM, P_IRT, GP_IRT, MP_IRT, GMP_IRT]

    def at(e, n=small):
        return float(mean.loc[e, n])

    n_ahead = sum(min(mean.loc[MP_IRT, n], mean.loc[GMP_IRT, n]) < min(mean.loc[P_IRT, n], mean.loc[GP_IRT, n])
                  for n in sizes)
    out.append(claims.Claim("irt", "mp-IRT and gmp-IRT estimate a merged model's accuracy with lower error than "
                            "p-IRT and gp-IRT (Fig. 3)", "lower at every subset size (figure, no numbers)",
                            f"at {small} items: mp {at(MP_IRT):.3f}, gmp {at(GMP_IRT):.3f}, p {at(P_IRT):.3f}"
                            f", gp {at(GP_IRT):.3f}", claims.verdict_share(n_ahead, len(sizes)),
                            f"the better of mp/gmp below the better of p/gp at {n_ahead} of {len(sizes)} subset sizes "
                            f"({', '.join(map(str, sizes))}); mean absolute error over {errors['model'].nunique()} "
                            f"held-out merged models and {errors['repetition'].nunique()} random subsets each"))
    n_irt = sum(mean.loc[e, n] < mean.loc[RANDOM, n] for e in core[1:] for n in sizes)
    out.append(claims.Claim("irt", "Every IRT estimator beats the random-subset mean", "all of them (Fig. 3)",
                            f"at {small} items: random {at(RANDOM):.3f}", claims.verdict_share(n_irt, 4 * len(sizes)),
                            f"{n_irt} of {4 * len(sizes)} (estimator, size) cells below the random mean"))
    cos = similarity.groupby(["estimator", "subset_size"])["cosine"].mean().unstack()
    dist = similarity.groupby(["estimator", "subset_size"])["distance"].mean().unstack()
    mp, p = ABILITY_FAMILIES["mp"], ABILITY_FAMILIES["p"]
    d = study.dims
    if d == 1:
        n_s = int(sum(dist.loc[mp, n] < dist.loc[p, n] for n in dist.columns))
        note = (f"with {d} IRT dimension the cosine is only the sign, so the Euclidean distance to the full-data "
                f"ability is compared: mp/gmp closer at {n_s} of {len(dist.columns)} sizes")
    else:
        n_s = int(sum(cos.loc[mp, n] > cos.loc[p, n] for n in cos.columns))
        note = f"mp/gmp's mean cosine higher at {n_s} of {len(cos.columns)} subset sizes"
    out.append(claims.Claim("irt", "mp/gmp-IRT's abilities are closer to the full-data abilities than p/gp-IRT's "
                            "(Fig. 4)", "higher cosine at 10 and 20 items",
                            f"at {small} items: cosine {cos.loc[mp, small]:.3f} vs {cos.loc[p, small]:.3f}, distance "
                            f"{dist.loc[mp, small]:.3f} vs {dist.loc[p, small]:.3f}",
                            claims.verdict_share(n_s, len(dist.columns)), note))
    ex = extractors.set_index(["extractor", "subset_size", "estimator"])["mean_abs_error"]
    cells = [(n, e) for n in extractors["subset_size"].unique() for e in extractors["estimator"].unique()]
    n_ok = sum(ex[("random", n, e)] <= min(ex[(c, n, e)] for c in ("IRT clustering", "representation clustering"))
               + 0.01 for n, e in cells)
    out.append(claims.Claim("irt", "Uniform random extraction is as good as clustering (appendix C.1)",
                            "as effective", f"random within 0.01 of the best clustering in {n_ok} of {len(cells)} cells",
                            claims.verdict_share(n_ok, len(cells)), "cells: subset size x estimator (random mean, "
                            "mp-IRT, gmp-IRT); mean absolute error on the held-out merged models"))
    pop = population[population["estimator"] == GMP_IRT].set_index("population")["abs_error"]
    ok = [k for k in pop.index if pop[k] <= pop.iloc[-1] + 0.01]
    out.append(claims.Claim("irt", "About 15 models suffice for a stable IRT fit (tinyBenchmarks, cited)", "about 15",
                            ", ".join(f"{k} models: {v:.3f}" for k, v in pop.items()),
                            "held" if min(ok) <= 16 else "not held", f"gmp-IRT's error at {small} items; the smallest "
                            f"population within 0.01 of the full one's is {min(ok)} models"))
    c = compute.set_index("run")
    full, ga = c.loc[study.runs.full.label], c.loc[study.runs.estimated.label]
    ratio = float(full["flops"] / ga["flops"])
    bound = len(study.fit_pos) / len(study.fitness_subset())
    pf = published.merge3_figures()["fitness_tflops"]
    out.append(claims.Claim("irt", "Estimated fitness cuts the fitness computation about 50-fold",
                            f"{pf['full'] / pf['merge3']:.0f}x (4e6 vs 0.077e6 TFLOPs)", f"{ratio:.1f}x FLOPs",
                            "held" if ratio >= 40 else "partly" if ratio >= 0.8 * bound else "not held",
                            f"the ratio is bounded by the fitness pool over the subset, {len(study.fit_pos)}/"
                            f"{len(study.fitness_subset())} = {bound:.1f}x here (the paper's 1,000/20); partly when at "
                            "least 80% of that bound"))
    res = results.set_index("model")
    acc_full, acc_ga = float(full["test_accuracy"]), float(ga["test_accuracy"])
    out.append(claims.Claim("irt", "Evolution on estimated fitness comes close to evolution on full-data fitness",
                            "0.34-0.42 vs 0.49 (Japanese GSM8K, Table 7)", f"{acc_ga:.3f} vs {acc_full:.3f}",
                            claims.verdict_close(acc_ga, acc_full) if acc_ga < acc_full else "held",
                            "test accuracy of the chosen models; held within 0.05 below, or above"))
    base = list(study.baselines())
    beaten = [n for n in base if acc_ga > res.loc[n, "test_accuracy"]]
    out.append(claims.Claim("irt", "The evolved merge beats the endpoints and the standard merges (Figs. 5-6)",
                            "above all of them", f"above {len(beaten)} of {len(base)}",
                            claims.verdict_share(len(beaten), len(base)), f"test accuracy over all {len(study.group)} "
                            f"tasks' items; {study.settings.ga_estimator} GA against " + ", ".join(
                                f"{n} {res.loc[n, 'test_accuracy']:.3f}" for n in base)))
    nsga = study.runs.per_task.label
    own = res.loc[OWN_SCORERS]
    wins = [t for t in study.group if res.loc[nsga, t] > own[t]]
    t1 = published.merge3_table("table1")[0].set_index("model")
    out.append(claims.Claim("irt", "The multi-objective merge beats each task's own model on its task (Table 1)",
                            f"{int((t1.loc['MERGE3'] > t1.loc['Finetuned']).sum())} of 4 languages",
                            f"{len(wins)} of {len(study.group)} tasks", claims.verdict_share(len(wins), len(study.group)),
                            "NSGA-II's chosen model against each endpoint on its own task, test items: " + ", ".join(
                                f"{t} {res.loc[nsga, t]:.3f} vs {own[t]:.3f}" for t in study.group)))
    return out
