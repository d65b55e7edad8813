"""The chapter's report: this run's tables beside the paper's (Tables 3 and 4), the paper's claims
judged from this run's results, the headline sentences, and what the plan-score figure marks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import claims, published
from . import judged_claims, merge_plans
from .protocol import DESCRIPTIONS, FAMILIES, GW_PLAN, HUMAN, LLM, PAPER_METRICS, PREMERGE, RANDOM
from .significance import implied_df

if TYPE_CHECKING:
    from .study import GWStudy


def plan_marks(plans: pd.DataFrame) -> dict[str, float]:
    """{method: its GW score} of the GW, paper and description plans (what the score histogram marks)."""
    return {r.method: r.gw_score for r in plans.itertuples() if r.source in ("gw", "paper", "description")}


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
    for other in (HUMAN, LLM):
        claim = f"GW-SMM's plan scores above the {other} plan on all four weighted metrics (Table 3)"
        if other not in mean.index or not multilabel:
            out.append(claims.not_tested("gw", claim, "4 of 4", needs))
            continue
        out.append(judged_claims.above_on_all(r, GW_PLAN, other, PAPER_METRICS, claim, base))
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


def summary_text(study: GWStudy, table3: pd.DataFrame, plans: pd.DataFrame, boot: pd.DataFrame) -> str:
    """A few sentences with this run's headline numbers (all computed): the GW plan against the others,
    how well it recovers the planted families, and how often resampling gives it back."""
    m, main = table3.set_index("method"), study.main
    label = {"micro_f1": "micro-F1", "qwk": "QWK"}.get(main, main)
    parts = [f"The GW plan's merged models reach a test {label} of {m.loc[GW_PLAN, main]:.3f}, against "
             f"{m.loc[PREMERGE, main]:.3f} before merging"]
    others = [f"{name} {m.loc[name, main]:.3f}" for name in (HUMAN, LLM, DESCRIPTIONS, FAMILIES) if name in m.index]
    random = m[m.index.str.startswith(RANDOM + " ")][main]
    if others:
        parts[0] += "; the other plans: " + ", ".join(others)
    if len(random):
        parts[0] += (f"; random plans {random.mean():.3f} on average ({random.min():.3f} to {random.max():.3f}, "
                     f"{len(random)} plans)")
    parts[0] += "."
    if "ari_families" in plans.columns:
        ari = plans.set_index("method")["ari_families"]
        text = f"Against the planted families the GW plan's adjusted Rand index is {ari[GW_PLAN]:.2f}"
        if DESCRIPTIONS in ari.index:
            text += f", the description plan's {ari[DESCRIPTIONS]:.2f}"
        parts.append(text + " (1: the families exactly, 0: chance).")
    if len(boot):
        parts.append(f"Resampling the responses gave the conditional-gradient solver's plan back "
                     f"{int(boot['same_as_cg_plan'].sum())} "
                     f"times in {len(boot)}.")
    return " ".join(parts)
