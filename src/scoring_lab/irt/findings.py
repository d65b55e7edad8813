"""The IRT chapter's findings in words: what the chosen c values mean, the summary of what held, and
which of the MERGE3 paper's claims held here, each judged by a paired test
(:mod:`~scoring_lab.irt.judging`) on the chapter's units: estimator errors over (held-out model,
subset) units, accuracies over test items, figures that follow from settings marked by construction."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import claims, published, verdicts
from . import judging, report
from .estimators import GMP_IRT, GP_IRT, MP_IRT, P_IRT, RANDOM
from .evaluation import ABILITY_FAMILIES
from .report import OWN_SCORERS, POPULATION_BEST

if TYPE_CHECKING:
    from .study import IRTStudy

# "About 50-fold", the paper's FLOPs ratio at its item ratio of 1,000 to 20: here, held when the end-to-end
# ratio reaches four fifths of the run's own item ratio (the paper's 52x within a fifth of its 50x), not held
# when its interval lies below that.
ABOUT = 0.8


def mixing_text(study: IRTStudy) -> str:
    """What the chosen c values mean, in a sentence per estimator (c = 0: the g- estimator is the plain one)."""
    return " ".join(f"The chosen c for {e} is {c:g}" + (f", so {e} is {e.replace('g', '', 1)} here." if c == 0
                                                         else ".") for e, c in sorted(study.chosen_mixing().items()))


def binding_dims_text(study: IRTStudy) -> str:
    """The tried dimensions where Eq. 2 binds (the dimension table's ``binds``), in words."""
    t = study.dimension_choice()
    return ", ".join(f"d = {d}" for d in t.loc[t["binds"], "dims"]) or "none of the tried dimensions"


def dimension_text(study: IRTStudy) -> str:
    """Which IRT dimension was chosen, and what the best-fitting one would have been."""
    cal = study.calibration
    t = cal.dimension_table.set_index("dims")["heldout_loglik"]
    n = len(study.group)
    if not cal.binds:
        return (f"The IRT model has {cal.dims} dimension(s), the best fit on the validation answers; no tried "
                f"dimension exceeds the {n} endpoints a merge has, so Eq. 2 constrains nothing here and mp-IRT is "
                "p-IRT.")
    text = (f"The IRT model has {cal.dims} dimensions, the best fit on the validation answers among the dimensions "
            f"above {n}, where Eq. 2 binds for every merge here.")
    best = int(t.idxmax())
    if best != cal.dims:
        text += (f" d = {best} fits them better ({t[best]:.3f} against {t[cal.dims]:.3f} per answer), but there "
                 "three endpoints' abilities span the whole ability space and mp-IRT cannot differ from p-IRT: "
                 "the price of testing the constraint is a less well-fitting IRT model.")
    return text


def summary_text(study: IRTStudy, errors: pd.DataFrame, arms: pd.DataFrame, compute: pd.DataFrame,
                 agreement: pd.DataFrame) -> str:
    """The chapter's findings in a few sentences, every number from the results."""
    small = int(errors["subset_size"].min())
    mean = errors[errors["subset_size"] == small].groupby("estimator")["abs_error"].mean().sort_values()
    a = arms.set_index("model")
    c = compute.set_index("arm")
    runs = study.runs
    full, ga, plain, nsga = runs.full.label, runs.estimated.label, runs.subset_mean.label, runs.per_task.label
    sampled = runs.sampled.label
    res = study.results().set_index("model")
    best_base = res.loc[list(study.baselines()), "test_accuracy"]
    part = errors[(errors["subset_size"] == small) & errors["estimator"].isin([P_IRT, MP_IRT])]
    by_size = part.groupby(["members", "estimator"])["abs_error"].mean().unstack()
    lines = [
        f"At {small} items, the estimators' mean absolute errors on the held-out merged models run from "
        f"{mean.iloc[0]:.3f} ({mean.index[0]}) to {mean.iloc[-1]:.3f} ({mean.index[-1]}): " +
        ", ".join(f"{e} {v:.3f}" for e, v in mean.items()) + ".",
        f"By how many endpoints a model merges (mp-IRT against p-IRT, {small} items, {study.dims} IRT dimensions): " +
        "; ".join(f"{k} endpoints {r[MP_IRT]:.3f} against {r[P_IRT]:.3f}" for k, r in by_size.iterrows()) + ".",
        f"Over {runs.replicates} replicates per arm, the chosen merges reach mean test accuracy "
        f"{a.loc[ga, 'test_accuracy']:.3f} with {study.settings.ga_estimator} fitness, "
        f"{a.loc[plain, 'test_accuracy']:.3f} with the subset's plain mean, {a.loc[full, 'test_accuracy']:.3f} "
        f"with full-data fitness, {a.loc[sampled, 'test_accuracy']:.3f} for random search with "
        f"{study.settings.ga_estimator} fitness and {a.loc[nsga, 'test_accuracy']:.3f} for NSGA-II's chosen member; "
        f"the population's best random merge reaches {res.loc[POPULATION_BEST, 'test_accuracy']:.3f}.",
        f"Per evaluation, {study.settings.ga_estimator} fitness costs {c.loc[ga, 'seconds_per_evaluation']:.2f} s "
        f"against {c.loc[full, 'seconds_per_evaluation']:.2f} s on all fitness items "
        f"({c.loc[ga, 'per_evaluation_flops_ratio']:.1f}x fewer FLOPs, "
        f"{c.loc[ga, 'per_evaluation_seconds_ratio']:.1f}x fewer seconds: building the merge costs the same in "
        f"both); with the IRT set-up counted, {_times(c.loc[ga, 'end_to_end_seconds_ratio'])} end to end at "
        f"{c.loc[ga, 'evaluations']:.0f} evaluations" +
        (f", and it breaks even after {c.loc[ga, 'break_even_evaluations_seconds']:,.0f} evaluations"
         if c.loc[ga, 'break_even_evaluations_seconds'] > 0 else ", and it never breaks even") + ".",
        f"The best standard merge or endpoint is {best_base.idxmax()} at {best_base.max():.3f}; the per-task scorers, "
        f"each on its own task, reach {res.loc[OWN_SCORERS, 'test_accuracy']:.3f}.",
    ]
    g = agreement.set_index("run")
    seen, true = g.loc[ga, "chosen_estimated"], g.loc[ga, "chosen_true"]
    lines.append(f"The GA's estimated fitness ranked its candidates with Spearman rho {g.loc[ga, 'spearman']:.2f} "
                 f"against their true validation accuracy (replicate 0); the model it chose looked like {seen:.3f} and "
                 f"is {true:.3f} on all validation items" + (" (a search's best estimate tends to be optimistic: it is "
                                                              "the maximum of noisy estimates)." if seen > true else "."))
    return " ".join(lines)


def _times(ratio: float) -> str:
    """How the IRT search's cost compares, from full-data fitness's cost over its."""
    if ratio >= 1:
        return f"the IRT search costs {ratio:.2f}x fewer seconds than the full-data one"
    return f"the IRT search costs {1 / ratio:.2f}x as many seconds as the full-data one"


def irt_claims(study: IRTStudy, errors: pd.DataFrame, similarity: pd.DataFrame, compute: pd.DataFrame
               ) -> list[claims.Claim]:
    """Which of the MERGE3 paper's claims held here, each judged by :mod:`~scoring_lab.irt.judging`:
    estimator errors paired over (held-out model, subset) units, accuracies over test items (replicates
    pooled per item), the compute claim on the measured ledger."""
    cfg, chosen = study.profile.claims, study.chosen_mixing()
    r, seed = cfg.n_resamples, cfg.seed
    small = int(errors["subset_size"].min())
    mean = errors.groupby(["estimator", "subset_size"])["abs_error"].mean().unstack()
    same = _coincide_text(chosen)
    binds = _binding_text(study)

    def at(*names):
        return ", ".join(f"{e} {mean.loc[e, small]:.3f}" for e in names)

    pairs, dropped = judging.distinct_pairs([(MP_IRT, P_IRT), (GMP_IRT, GP_IRT)], chosen)
    v = judging.compare_units(errors, pairs, "abs_error", verdicts.LESS, judging.MAE, r, seed)
    out = [claims.judged("irt", "mp-IRT and gmp-IRT estimate a merged model's accuracy with lower error than p-IRT "
                         "and gp-IRT (Fig. 3)", "lower at every subset size (figure, no numbers)", v,
                         _join(f"mean absolute error at {small} items: {at(MP_IRT, GMP_IRT, P_IRT, GP_IRT)}; "
                               "comparisons: " + ", ".join(f"{a} vs {b}" for a, b in pairs) + " at every size",
                               binds, same, "; ".join(dropped)))]
    irt = [e for e in dict.fromkeys(judging.canonical(e, chosen) for e in (P_IRT, GP_IRT, MP_IRT, GMP_IRT))]
    v = judging.compare_units(errors, [(e, RANDOM) for e in irt], "abs_error", verdicts.LESS, judging.MAE, r, seed)
    out.append(claims.judged("irt", "Every IRT estimator beats the random-subset mean", "all of them (Fig. 3)", v,
                             _join(f"{len(irt)} distinct IRT estimators ({', '.join(irt)}) against the random mean "
                                   f"({mean.loc[RANDOM, small]:.3f} at {small} items) at every size", same)))
    out.append(_abilities_claim(study, similarity, small, r, seed))
    out.append(_extractor_claim(study, chosen, same))
    out += _compute_claims(study, compute, r, seed)
    out += _accuracy_claims(study, cfg.equivalence_margin, r, seed)
    return out


def _binding_text(study: IRTStudy) -> str:
    cal = study.calibration
    sizes = sorted(set(study.space.merge_sizes))
    if cal.binds:
        return (f"Eq. 2 binds: the held-out models merge {' or '.join(map(str, sizes))} endpoints, whose abilities "
                f"span less than the {cal.dims} IRT dimensions; p- and mp-IRT share one prior on the ability")
    return (f"Eq. 2 does not bind here: no tried dimension exceeds the {max(sizes)} endpoints a merge has, so mp-IRT "
            "equals p-IRT but for rounding")


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


def _extractor_claim(study: IRTStudy, chosen: dict[str, float], same: str) -> claims.Claim:
    units = study.extractor_units()
    margins = study.extractor_margins().set_index(["subset_size", "estimator"])["margin"]
    names = list(dict.fromkeys(judging.canonical(e, chosen) for e in (RANDOM, MP_IRT, GMP_IRT)))
    samples, cell_margins = {}, {}
    for e in names:
        t = units[units["estimator"] == e].drop(columns="estimator").rename(columns={"extractor": "estimator"})
        for c in ("IRT clustering", "representation clustering"):
            for n, sample in judging.unit_scores(t, "random", c, "abs_error").items():
                samples[(e, c, n)], cell_margins[(e, c, n)] = sample, float(margins.loc[(n, e)])
    v = judging.no_worse_units(samples, cell_margins)
    both = judging.equivalent_units(samples, cell_margins)
    return claims.judged("irt", "Uniform random extraction is as good as clustering (appendix C.1)",
                         "clustering offers no significant advantage", v,
                         _join(f"cells: subset size x estimator ({', '.join(names)}) x clustering (IRT, "
                               "representation as the paper's Algorithm 2); random items' mean absolute error minus "
                               "clustering's on the same (held-out model, repetition) units, held when no worse by "
                               "more than the cell's margin (the paper's words: no significant advantage for the "
                               "complex methods); each margin is the spread one draw of random subsets puts on that "
                               "estimator's mean error at that size (sd over draws, validation models and items); "
                               f"read two-sided, as sameness (TOST): {both.verdict}, "
                               f"{sum(both.held_each)} of {len(both.held_each)} cells", same))


def _compute_claims(study: IRTStudy, compute: pd.DataFrame, r: int, seed: int) -> list[claims.Claim]:
    """The paper's "about 50-fold" read twice, like with like (merges counted in both arms): per evaluation,
    the paper's own reading (its population's answers cost it nothing), and end to end with the IRT set-up,
    ``not tested`` when the set-up alone exceeds what full-data fitness costs at this search's evaluations."""
    c = compute.set_index("arm")
    label = study.runs.estimated.label
    ga, full = c.loc[label], c.loc[study.runs.full.label]
    pool, subset = len(study.fit_pos), int(ga["items_per_evaluation"]) * len(study.group)
    needed = ABOUT * pool / subset
    costs, n = study.costs(), study.settings.cost_models
    pf = published.merge3_figures()["fitness_tflops"]
    paper = f"{pf['full'] / pf['merge3']:.0f}x FLOPs at 1,000 items against 20, set-up free"
    band = f"held at {ABOUT:g} of this run's item ratio ({pool} fitness items over a subset of {subset}: {needed:.1f}x)"
    interval = f"95% percentile interval over {n} timed merges resampled ({r} resamples, seed {seed})"
    out = []
    ratio, lo, hi = costs.ratio(label, r, seed, setup=False)
    v = verdicts.band(ratio, lo, hi, n, f"the full-data GA's seconds per evaluation over the "
                      f"{study.settings.ga_estimator} GA's, merge and scoring in both; {interval}", at_least=needed,
                      n_text=f"{n} timed merges")
    out.append(claims.judged(
        "irt", "Estimated fitness cuts the fitness computation about 50-fold (per evaluation)", paper, v,
        f"{claims.WALL_CLOCK_NOTE}: measured, building and loading each merge counted in both arms; {band}; "
        f"scoring alone saves {ga['per_evaluation_flops_ratio']:.1f}x FLOPs", our_value=f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]"))
    claim = "Estimated fitness cuts the fitness computation about 50-fold (end to end, set-up counted)"
    ceiling = float(full["total_seconds"] / ga["setup_seconds"])
    be = ga["break_even_evaluations_seconds"]
    after = f"break-even after {be:,.0f} evaluations (seconds)" if be == be else "no break-even"
    reason = verdicts.reachable(needed, ceiling, f"the IRT set-up ({ga['setup_seconds']:.0f} s) against full-data "
                                f"fitness's {full['total_seconds']:.0f} s at {ga['evaluations']:.0f} evaluations")
    if reason:
        return out + [claims.not_tested("irt", claim, paper, f"{claims.WALL_CLOCK_NOTE}: {reason}; measured "
                                        f"{ga['end_to_end_seconds_ratio']:.2f}x seconds, "
                                        f"{ga['end_to_end_flops_ratio']:.2f}x FLOPs end to end; {after}")]
    ratio, lo, hi = costs.ratio(label, r, seed)
    v = verdicts.band(ratio, lo, hi, n, f"the full-data GA's seconds over the {study.settings.ga_estimator} GA's, "
                      f"set-up included, at {ga['evaluations']:.0f} evaluations each; {interval}", at_least=needed,
                      n_text=f"{n} timed merges")
    return out + [claims.judged("irt", claim, paper, v, f"{claims.WALL_CLOCK_NOTE}: measured end to end; {band}; "
                                f"{ga['end_to_end_flops_ratio']:.2f}x fewer FLOPs; {after}",
                                our_value=f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]")]


def arm_comparisons(study: IRTStudy) -> pd.DataFrame:
    """a, b, effect, ci_low, ci_high, verdict, n, test: the test accuracy of every search arm against the
    full-data GA, the IRT GA against its two controls (the subset mean, random search), and every arm against
    the population's best random merge (a reference from a broader space), each a paired
    bootstrap over the test items (within tasks; an arm's replicates pooled per item), uncorrected: each row
    is its own comparison (the claims correct theirs together)."""
    cfg, runs = study.profile.claims, study.runs
    task, group = study.pool.task[study.eval_pos], study.group
    models = {a.label: _replicates(study, a) for a in runs.arms}
    models[POPULATION_BEST] = [study.test_correct(study.population_best())] * runs.replicates
    pairs = [(a.label, runs.full.label) for a in runs.arms[1:]] + [
        (runs.estimated.label, runs.subset_mean.label), (runs.estimated.label, runs.sampled.label)] + \
        [(a.label, POPULATION_BEST) for a in runs.arms]
    rows = []
    for a, b in pairs:
        v = judging.compare_accuracy(judging.by_task(models[a], models[b], task, group), verdicts.GREATER,
                                     cfg.n_resamples, cfg.seed)
        rows.append({"a": a, "b": b, "effect": v.effect, "ci_low": v.ci_low, "ci_high": v.ci_high,
                     "a_above_b": v.verdict, "n": v.n_text, "test": v.test})
    return pd.DataFrame(rows)


def _replicates(study: IRTStudy, arm) -> list:
    """The test correctness (k,) of the chosen model of each replicate of ``arm``."""
    found = study.searches()
    return [study.test_correct(found[arm.at(q)].chosen) for q in range(study.runs.replicates)]


def _accuracy_claims(study: IRTStudy, margin: float, r: int, seed: int) -> list[claims.Claim]:
    runs, task, group = study.runs, study.pool.task[study.eval_pos], study.group
    ga, full, plain = (_replicates(study, a) for a in (runs.estimated, runs.full, runs.subset_mean))
    res = study.results()
    arms = report.arm_summary(res, [a.label for a in runs.arms]).set_index("model")
    res = res.set_index("model")
    reps = f"{runs.replicates} replicates per arm (GA seed and fitness subset), pooled per test item"

    def acc(label):
        return f"{arms.loc[label, 'test_accuracy']:.3f}"

    out = []
    v = judging.close_to_accuracy(judging.by_task(ga, full, task, group), margin, r, seed)
    out.append(claims.judged("irt", "Evolution on estimated fitness comes close to evolution on full-data fitness",
                             "0.34-0.42 vs 0.49 (Japanese GSM8K, Table 7)", v,
                             f"test accuracy of the chosen models, {acc(runs.estimated.label)} vs "
                             f"{acc(runs.full.label)}; {reps}; held when the estimated-fitness search is at most "
                             f"{margin:g} below (one-sided, the profile's equivalence margin), above is fine"))
    v = judging.compare_accuracy(judging.by_task(ga, plain, task, group), verdicts.GREATER, r, seed)
    out.append(claims.judged("irt", "IRT fitness evolves better merges than the same subset's plain mean (control)",
                             "the paper's premise: a better estimator makes a better fitness", v,
                             f"{acc(runs.estimated.label)} vs {acc(runs.subset_mean.label)}; same GA seeds and subsets, "
                             f"only the fitness differs; {reps}"))
    sampled = _replicates(study, runs.sampled)
    v = judging.compare_accuracy(judging.by_task(ga, sampled, task, group), verdicts.GREATER, r, seed)
    out.append(claims.judged("irt", "Evolution beats random search on the same fitness (control)",
                             "the paper's premise: the Evolve step adds to sampling", v,
                             f"{acc(runs.estimated.label)} vs {acc(runs.sampled.label)}: the same "
                             f"{study.settings.ga_estimator} fitness on the same subsets, as many candidates drawn "
                             "uniformly in the same space as the GA evaluates, the best kept; only the search "
                             f"differs; {reps}; the population's best random merge (a broader space, chosen on all "
                             f"fitness items) is {res.loc[POPULATION_BEST, 'test_accuracy']:.3f}"))
    base = study.baselines()
    comparisons = {n: judging.by_task(ga, [study.test_correct(b)] * len(ga), task, group) for n, b in base.items()}
    best = max(base, key=lambda n: res.loc[n, "test_accuracy"])
    v = judging.compare_many(comparisons, best, verdicts.GREATER, r, seed)
    held = [n for n, h in zip(base, v.held_each) if h]
    out.append(claims.judged("irt", "The evolved merge beats the endpoints and the standard merges (Figs. 5-6)",
                             "above all of them", v,
                             f"test accuracy over all {len(group)} tasks' items, {study.settings.ga_estimator} GA "
                             f"{acc(runs.estimated.label)} against " + ", ".join(
                                 f"{n} {res.loc[n, 'test_accuracy']:.3f}" for n in base) +
                             f"; {reps}; effect against the best of them, {best}; above after Holm: "
                             f"{', '.join(held) if held else 'none'}"))
    nsga = _replicates(study, runs.per_task)
    per_task = {t: judging.by_task(nsga, [study.test_correct(e)] * len(nsga), task, group)[t]
                for t, e in zip(group, study.space.endpoints())}
    parts = {t: judging.compare_accuracy({t: s}, verdicts.GREATER, r, seed) for t, s in per_task.items()}
    overall = judging.compare_accuracy(per_task, verdicts.GREATER, r, seed)
    v = verdicts.compare_all(list(parts.values()), overall)
    t1 = published.merge3_table("table1")[0].set_index("model")
    own = res.loc[OWN_SCORERS]
    mean_nsga = res[res.index == runs.per_task.label][list(group)].mean()
    out.append(claims.judged("irt", "The multi-objective merge beats each task's own model on its task (Table 1)",
                             f"{int((t1.loc['MERGE3'] > t1.loc['Finetuned']).sum())} of 4 languages", v,
                             "NSGA-II's chosen model against each endpoint on its own task's test items: " + ", ".join(
                                 f"{t} {mean_nsga[t]:.3f} vs {own[t]:.3f}" for t in group) +
                             f"; {reps}; effect: all tasks' items pooled"))
    return out
