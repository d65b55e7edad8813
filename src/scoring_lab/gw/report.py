"""The chapter's report: this run's tables beside the paper's (Tables 3 and 4), the paper's claims
judged from this run's results, the headline sentences, and what the plan-score figure marks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import claims, published
from . import judged_claims, merge_plans, plan_ranks, premise
from .protocol import DESCRIPTIONS, FAMILIES, GW_PLAN, HUMAN, LLM, PAPER_METRICS, PREMERGE
from .significance import implied_df

if TYPE_CHECKING:
    from .study import GWStudy


def plan_marks(plans: pd.DataFrame) -> dict[str, float]:
    """{method: its GW score} of the GW, paper and description plans (what the score histogram marks)."""
    return {r.method: r.gw_score for r in plans.itertuples() if r.source in ("gw", "paper", "description")}


def tuned_share(study: GWStudy) -> str:
    """"3.5M of 22.7M parameters (15%)": how much of the encoder the scorers fine-tuned (the first task's
    scorer; every scorer of a run trains the same layers)."""
    ev = study.setup.evaluator
    total = sum(v.numel() for v in ev.upper.base.values())
    tuned = sum(v.numel() for v in ev.parts(study.names[0]).encoder.values())
    return f"{tuned / 1e6:.1f}M of {total / 1e6:.1f}M, {tuned / total:.0%}"


def profile_words(profile) -> str:
    """The GW settings of ``profile`` that the paper's questions need, in words (its backbone, fine-tuning,
    responses, solver, random plans, bootstrap and TIES grid)."""
    g, t = profile.gw, profile.train
    tuned = f"top {t.trainable_layers} layers" if t.trainable_layers else "every layer"
    points = "every training and validation response" if g.max_points is None else f"{g.max_points} responses a task"
    solver = f"{g.method} GW" + (f" at ε = {g.epsilon:g}" if g.method == "entropic" else "")
    return (f"{t.backbone}, {tuned} fine-tuned; {points}; {solver}; {g.random_plans} random plans with the GW "
            f"plan's sizes; {g.bootstrap} bootstrap resamples; a {len(g.ties_density)} x {len(g.ties_scaling)} TIES "
            "grid")


def paper_units() -> dict:
    """What the paper's Table 4 implies and what it had: implied (sorted distinct numbers of paired
    units its t and p give), tasks and task_labels (of its Table 2)."""
    t4, _ = published.gw_table4()
    tasks, _ = published.task_numbering("gw")
    return {"implied": sorted({implied_df(t, p) + 1 for t, p in zip(t4["t"], t4["p"])}),
            "tasks": len(tasks), "task_labels": int(tasks["n_labels"].sum())}


def table3_vs_paper(table3: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 rows beside ours (same methods), columns ``method, figures, <metrics>``."""
    theirs, _ = published.gw_table3()
    ours = table3[table3["method"].isin(theirs["method"])].set_index("method")
    rows = []
    for method in theirs["method"]:
        p = theirs.set_index("method").loc[method]
        rows.append({"method": method, "figures": "GW paper (published)", **{c: p[c] for c in PAPER_METRICS}})
        if method in ours.index:
            o = ours.loc[method]
            rows.append({"method": method, "figures": "this book",
                         **{c: o[c] for c in PAPER_METRICS if c in ours.columns}})
    return pd.DataFrame(rows)


def table4_vs_paper(tests: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 4 (t and p) beside ours on tasks as the paired unit, with the number of paired
    units the paper's t and p imply."""
    theirs, _ = published.gw_table4()
    ours = tests[tests["unit"] == "task"].set_index(["metric", "method_a", "method_b"]) if len(tests) else None
    out = theirs.rename(columns={"t": "t (paper)", "p": "p (paper)"}).copy()
    idx = list(zip(out["metric"], out["method_a"], out["method_b"]))
    for col, name in (("t", "t (ours)"), ("p", "p (ours)"), ("wilcoxon_p", "wilcoxon p (ours)")):
        out[name] = [ours[col].get(i, np.nan) if ours is not None else np.nan for i in idx]
    out["paper's implied units"] = [implied_df(t, p) + 1 for t, p in zip(theirs["t"], theirs["p"])]
    return out


def responses(study: GWStudy) -> judged_claims.Responses:
    """Every method's test predictions with each task's truth (cached predictions: nothing is retrained),
    with the profile's bootstrap settings."""
    tasks = study.tasks
    multilabel = study.kind == "multilabel"
    truth = {t: (tasks[t].test.labels if multilabel else tasks[t].test.scores) for t in study.names}
    classes = {tasks[t].n_classes for t in study.names}
    c = study.profile.claims
    return judged_claims.Responses(truth, study.evaluation.methods(), study.kind,
                                   classes.pop() if len(classes) == 1 else None, c.n_resamples, c.seed)


def gw_claims(study: GWStudy, table3: pd.DataFrame, tests: pd.DataFrame, storage: pd.DataFrame) -> list:
    """The GW paper's claims, each judged on this run's test predictions (see :mod:`.judged_claims`):
    plan against plan by paired bootstraps over test responses stratified by task, sameness by
    equivalence tests, the storage saving and the uncapped plan's group size by construction."""
    theirs, _ = published.gw_table3()
    paper = theirs.set_index("method")
    mean = table3.set_index("method")
    train = study.profile.train
    tuned = (f"top {train.trainable_layers} layers fine-tuned" if train.trainable_layers else "fully fine-tuned")
    base = (f"{'synthetic benchmark' if study.families() is not None else 'this source'}; {train.backbone} "
            f"scorers, {tuned}")
    r = responses(study)
    needs = "needs the paper's nine multi-label tasks"
    multilabel = study.kind == "multilabel"
    out = []
    ranks = study.ranks.table().set_index("method")
    for other in (HUMAN, LLM):
        claim = f"GW-SMM's plan scores above the {other} plan on all four weighted metrics (Table 3)"
        if other not in mean.index or not multilabel:
            out.append(claims.not_tested("gw", claim, "4 of 4", needs))
            continue
        footing = (f"{base}; the plans merge {int(mean.loc[GW_PLAN, 'merged_tasks'])} and "
                   f"{int(mean.loc[other, 'merged_tasks'])} tasks (group sizes {ranks.loc[GW_PLAN, 'sizes']} and "
                   f"{ranks.loc[other, 'sizes']}), so the all-task figures also differ in how much is merged; per "
                   f"merged task they lose {ranks.loc[GW_PLAN, 'drop_per_merged_task']:.3f} and "
                   f"{ranks.loc[other, 'drop_per_merged_task']:.3f} micro-F1")
        out.append(judged_claims.above_on_all(r, GW_PLAN, other, PAPER_METRICS, claim, footing))
    t4, _ = published.gw_table4()
    units = paper_units()
    task_tests = tests[tests["unit"] == "task"].set_index(["metric", "method_a", "method_b"]) if len(tests) else None
    for metric in ("micro_f1", "per_label_accuracy"):
        row = t4[(t4["metric"] == metric) & (t4["method_a"] == GW_PLAN) & (t4["method_b"] == LLM)].iloc[0]
        claim = f"GW-SMM beats GPT-o1 significantly on {judged_claims.NAMES[metric]} (Table 4)"
        value = f"t = {row['t']:.2f}, p = {row['p']:.3f}"
        if LLM not in mean.index or not multilabel:
            out.append(claims.not_tested("gw", claim, value, needs))
            continue
        key = (metric, GW_PLAN, LLM)
        ours = (f"; our paired t-test over the {int(task_tests.loc[key, 'n'])} tasks, as the paper's unit might be: "
                f"t = {task_tests.loc[key, 't']:.2f}, p = {task_tests.loc[key, 'p']:.3f}"
                if task_tests is not None and key in task_tests.index else "")
        out.append(judged_claims.beats(
            r, GW_PLAN, LLM, metric, claim, value,
            f"{base}; the paper's t and p (over {implied_df(row['t'], row['p']) + 1} paired units, neither its "
            f"{units['tasks']} tasks nor its {units['task_labels']} task-labels) are its figure; ours is the "
            f"paired bootstrap over test responses within tasks{ours}"))
    claim = "GW-SMM and Human Knowledge do not differ significantly on any metric (Table 4)"
    if HUMAN not in mean.index or not multilabel:
        out.append(claims.not_tested("gw", claim, "p > 0.05 on 4 of 4", needs))
    else:
        out.append(judged_claims.no_difference(r, GW_PLAN, HUMAN, PAPER_METRICS, study.profile.claims.equivalence_margin,
                                               claim, base))
    main = study.main
    metrics = (main, *(m for m in study.metrics if m != main))
    claim = "Merged models stay below the pre-merge models (micro-F1 0.687 against 0.829)"
    below_value = f"below on {len(PAPER_METRICS)} of {len(PAPER_METRICS)}"
    comparable = multilabel or r.n_classes is not None
    if not comparable:
        out.append(claims.not_tested("gw", claim, below_value, "the tasks have different numbers of classes: no "
                                     "one metric to resample over them"))
    else:
        out.append(judged_claims.below_all(r, GW_PLAN, PREMERGE, metrics, claim, below_value, base))
    gap_paper = float(paper.loc[PREMERGE, "micro_f1"] - paper.loc[GW_PLAN, "micro_f1"])
    claim = f"The merged models' micro-F1 gap to the pre-merge models is about the paper's {gap_paper:.3f}"
    if not multilabel:
        out.append(claims.not_tested("gw", claim, f"gap {gap_paper:.3f}", "the paper's gap is a micro-F1 over "
                                     "multi-label tasks"))
    else:
        out.append(judged_claims.gap_band(r, GW_PLAN, PREMERGE, "micro_f1", gap_paper, claim, base))
    out += premise_claims(study, base)
    st = storage.set_index("method")
    out.append(judged_claims.storage_claim("Merging nine models into five roughly halves the storage",
                                           float(st.loc[GW_PLAN, "saving"]), int(st.loc[GW_PLAN, "n_models"]),
                                           len(study.names), published.gw_storage()["model_mb"]))
    free = [e for e in study.plans() if e.name == f"{GW_PLAN} (no group cap)"]
    plan = free[0].plan if free else study.plan(GW_PLAN)
    out.append(judged_claims.group_size_claim("The GW objective merges models in pairs or trios", plan,
                                              len(study.names), study.n_models, merge_plans.format_plan(plan), base))
    lw = f"{GW_PLAN}, layer-wise coefficients"
    claim = "Adaptive layer-wise merging would narrow the gap to the pre-merge models (future work)"
    if lw not in mean.index:
        out.append(claims.not_tested("gw", claim, "-", "no layer-wise coefficients in this run (see the profile)"))
    elif not comparable:
        out.append(claims.not_tested("gw", claim, "-", "the tasks have different numbers of classes"))
    else:
        out.append(judged_claims.narrows_gap(
            r, lw, GW_PLAN, PREMERGE, main, claim,
            f"{base}; AdaMerging-style per-task, per-layer coefficients fitted on validation responses, against "
            "TIES with settings chosen on validation"))
    return out


def premise_claims(study: GWStudy, base: str) -> list:
    """The premise (GW similarity predicts the pairwise merge loss), the GW plan's rank among random plans
    with its group sizes, and the bootstrap GW plans against those random plans."""
    out = []
    claim = ("GW similarity between two tasks' feature clouds predicts how little merging them loses (the "
             "method's premise)")
    if len(study.names) < premise.MIN_TASKS:
        out.append(claims.not_tested("gw", claim, "assumed, not tested", f"{len(study.names)} tasks: a correlation "
                                     f"over task pairs needs at least {premise.MIN_TASKS} tasks"))
    else:
        corr = study.premise_correlations()
        others = "; ".join(f"{r.predictor} {r.rho:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
                           for r in corr.iloc[1:].itertuples())
        setting = study.pairwise.chosen()
        out.append(claims.judged(
            "gw", claim, "assumed, not tested", study.premise.verdict(premise.GW_OWN),
            f"{base}; every pair of tasks merged with TIES (density {setting.density:g}, scaling "
            f"{setting.scaling:g}, chosen on these validation merges), its loss the two own scorers' validation "
            f"{study.main} minus the merged pair's; premise: a negative rho. The controls' rho: {others}", digits=2))
    claim = "The GW plan merges better than random plans with its group sizes (beyond the paper)"
    t = study.ranks.table().set_index("method")
    n_random = int((t["kind"] == "random").sum())
    if n_random < 1:
        out.append(claims.not_tested("gw", claim, "-", f"no random plans: gw.random_plans is "
                                     f"{study.settings.random_plans} and {study.ranks.n_like()} other plans have the "
                                     "GW plan's group sizes"))
        return out
    out.append(claims.judged(
        "gw", claim, "-", study.ranks.rank(GW_PLAN),
        f"{base}; every plan merged with the same TIES setting, the random plans drawn from the "
        f"{study.ranks.n_like():,} with the GW plan's group sizes; the oracle with the same sizes ranks "
        f"{_rank_text(t, plan_ranks.ORACLE_SAME_SIZES)}, the description plan {_rank_text(t, DESCRIPTIONS)}",
        our_value=f"rank {int(t.loc[GW_PLAN, 'rank_among_random'])} of {n_random + 1}"))
    boot = t[t["kind"] == plan_ranks.BOOTSTRAP]
    claim = ("GW-SMM as a method (its plan from resampled responses) merges better than random plans with the "
             "same group sizes (beyond the paper)")
    if len(boot) < 2 or n_random < 2:
        out.append(claims.not_tested("gw", claim, "-", "fewer than two bootstrap or random plans in this profile"))
    else:
        v = study.ranks.bootstrap_against_random()
        out.append(claims.judged(
            "gw", claim, "-", v, f"{base}; the {len(boot)} bootstrap plans use the conditional-gradient solver (the "
            f"entropic one costs too much per resample here); their ranks among the random plans: "
            f"{', '.join(str(int(x)) for x in boot['rank_among_random'])}"))
    return out


def _rank_text(t: pd.DataFrame, method: str) -> str:
    return (f"{int(t.loc[method, 'rank_among_random'])}" if method in t.index and t.loc[method, "same_sizes_as_gw"]
            else "(not drawn here)")


def summary_text(study: GWStudy, table3: pd.DataFrame, plans: pd.DataFrame, boot: pd.DataFrame) -> str:
    """A few sentences with this run's headline numbers (all computed): the GW plan against the others,
    how well it recovers the planted families, and how often resampling gives it back."""
    m, main = table3.set_index("method"), study.main
    label = {"micro_f1": "micro-F1", "qwk": "QWK"}.get(main, main)
    parts = [f"The GW plan's merged models reach a test {label} of {m.loc[GW_PLAN, main]:.3f}, against "
             f"{m.loc[PREMERGE, main]:.3f} before merging"]
    others = [f"{name} {m.loc[name, main]:.3f}" for name in (HUMAN, LLM, DESCRIPTIONS, FAMILIES) if name in m.index]
    ranks = study.ranks.table()
    random = ranks.loc[ranks["kind"] == "random", main]
    if others:
        parts[0] += "; the other plans: " + ", ".join(others)
    parts[0] += "."
    if len(random):
        gw = ranks.set_index("method").loc[GW_PLAN]
        booted = ranks[ranks["kind"] == plan_ranks.BOOTSTRAP]
        text = (f"Among {len(random)} random plans with its group sizes ({random.mean():.3f} on average, "
                f"{random.min():.3f} to {random.max():.3f}) the GW plan ranks {int(gw['rank_among_random'])} of "
                f"{len(random) + 1}")
        if len(booted):
            text += (f"; the GW plans of the {len(booted)} bootstrap resamples reach {booted[main].mean():.3f} on "
                     "average "
                     f"({booted[main].min():.3f} to {booted[main].max():.3f}; ranks "
                     f"{', '.join(str(int(x)) for x in booted['rank_among_random'])})")
        parts.append(text + ".")
    corr = study.premise_correlations().set_index("predictor")
    if premise.GW_OWN in corr.index and np.isfinite(corr.loc[premise.GW_OWN, "rho"]):
        g = corr.loc[premise.GW_OWN]
        best = corr["rho"].idxmin()
        parts.append(f"Over the {int(g['n_pairs'])} pairwise merges, GW similarity and merge loss have Spearman's "
                     f"rho {g['rho']:+.2f} [{g['ci_low']:+.2f}, {g['ci_high']:+.2f}] (a negative rho is the premise); "
                     f"the most negative of all predictors is {best}'s, {corr.loc[best, 'rho']:+.2f}.")
    if "ari_families" in plans.columns:
        ari = plans.set_index("method")["ari_families"]
        text = f"Against the planted families the GW plan's adjusted Rand index is {ari[GW_PLAN]:.2f}"
        if DESCRIPTIONS in ari.index:
            text += f", the description plan's {ari[DESCRIPTIONS]:.2f}"
        parts.append(text + " (1: the families exactly, 0: chance).")
    return " ".join(parts + _boot_sentence(boot))


def _boot_sentence(boot: pd.DataFrame) -> list[str]:
    if not len(boot):
        return []
    return [f"Resampling the responses gave the conditional-gradient solver's plan back "
            f"{int(boot['same_as_cg_plan'].sum())} times in {len(boot)}."]
