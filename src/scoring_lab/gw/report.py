"""The chapter's report: this run's tables beside the paper's (Tables 3 and 4), the paper's claims
judged from this run's results, the headline sentences, and what the plan-score figure marks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import claims, published
from . import merge_plans
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


def gw_claims(study: GWStudy, table3: pd.DataFrame, tests: pd.DataFrame, storage: pd.DataFrame) -> list:
    """The GW paper's claims, each judged from this run's results (see :mod:`scoring_lab.claims`)."""
    theirs, _ = published.gw_table3()
    paper = theirs.set_index("method")
    mean = table3.set_index("method")
    train = study.profile.train
    tuned = (f"top {train.trainable_layers} layers fine-tuned" if train.trainable_layers else "fully fine-tuned")
    base = (f"{'synthetic benchmark' if study.families() is not None else 'this source'}; {train.backbone} "
            f"scorers, {tuned}")
    out = []
    names = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "exact_match": "exact match",
             "per_label_accuracy": "per-label accuracy"}
    multilabel = study.kind == "multilabel"
    for other in (HUMAN, LLM):
        claim = f"GW-SMM's plan scores above the {other} plan on all four weighted metrics (Table 3)"
        if other not in mean.index or not multilabel:
            out.append(claims.not_tested("gw", claim, "4 of 4", "needs the paper's nine multi-label tasks"))
            continue
        ahead = [c for c in PAPER_METRICS if mean.loc[GW_PLAN, c] > mean.loc[other, c]]
        gaps = ", ".join(f"{names[c]} {mean.loc[GW_PLAN, c] - mean.loc[other, c]:+.3f}" for c in PAPER_METRICS)
        out.append(claims.Claim("gw", claim, "4 of 4", f"{len(ahead)} of 4", claims.verdict_share(len(ahead), 4),
                                f"{base}; test-size-weighted means; GW minus {other}: {gaps}"))
    t4, _ = published.gw_table4()
    units = paper_units()
    task_tests = tests[tests["unit"] == "task"].set_index(["metric", "method_a", "method_b"]) if len(tests) else None
    for metric in ("micro_f1", "per_label_accuracy"):
        row = t4[(t4["metric"] == metric) & (t4["method_a"] == GW_PLAN) & (t4["method_b"] == LLM)].iloc[0]
        claim = f"GW-SMM beats GPT-o1 significantly on {names[metric]} (Table 4)"
        value = f"t = {row['t']:.2f}, p = {row['p']:.3f}"
        key = (metric, GW_PLAN, LLM)
        if task_tests is None or key not in task_tests.index:
            out.append(claims.not_tested("gw", claim, value, "needs the paper's nine multi-label tasks"))
            continue
        r = task_tests.loc[key]
        ok = r["mean_difference"] > 0 and r["p"] < 0.05
        out.append(claims.Claim("gw", claim, value, f"t = {r['t']:.2f}, p = {r['p']:.3f}",
                                "held" if ok else "not held",
                                f"{base}; paired t-test over the {int(r['n'])} tasks (Wilcoxon p = "
                                f"{r['wilcoxon_p']:.3f}); the paper's t and p imply {implied_df(row['t'], row['p']) + 1} "
                                f"paired units, neither its {units['tasks']} tasks nor its {units['task_labels']} "
                                "task-labels"))
    claim = "GW-SMM and Human Knowledge do not differ significantly on any metric (Table 4)"
    keys = [(m, GW_PLAN, HUMAN) for m in PAPER_METRICS]
    if task_tests is None or not all(k in task_tests.index for k in keys):
        out.append(claims.not_tested("gw", claim, "p > 0.05 on 4 of 4", "needs the paper's nine multi-label tasks"))
    else:
        ps = [task_tests.loc[k, "p"] for k in keys]
        n_ns = sum(not p < 0.05 for p in ps)
        out.append(claims.Claim("gw", claim, "p > 0.05 on 4 of 4", f"p > 0.05 on {n_ns} of 4",
                                "held" if n_ns == 4 else "not held",
                                f"{base}; paired t-tests over tasks; p = " + ", ".join(f"{p:.2f}" for p in ps)))
    claim = "Merged models stay below the pre-merge models (micro-F1 0.687 against 0.829)"
    gap_paper = paper.loc[PREMERGE, "micro_f1"] - paper.loc[GW_PLAN, "micro_f1"]
    main = study.main
    gap = mean.loc[PREMERGE, main] - mean.loc[GW_PLAN, main]
    below = [c for c in study.metrics if mean.loc[GW_PLAN, c] < mean.loc[PREMERGE, c]]
    out.append(claims.Claim("gw", claim, f"gap {gap_paper:.3f}", f"gap {gap:.3f} ({main})",
                            claims.verdict_share(len(below), len(study.metrics)) if below else "not held",
                            f"{base}; GW plan below pre-merge on {len(below)} of {len(study.metrics)} weighted "
                            "metrics; held if on all"))
    claim = "Merging nine models into five roughly halves the storage"
    st = storage.set_index("method")
    saving = float(st.loc[GW_PLAN, "saving"])
    out.append(claims.Claim("gw", claim, "about 2x", f"{saving:.2f}x ({int(st.loc[GW_PLAN, 'n_models'])} models)",
                            "held" if saving >= 1.75 else "partly" if saving >= 1.4 else "not held",
                            f"every model stored whole, as the paper counts (its {published.gw_storage()['model_mb']} "
                            "MB per BERT); held from 1.75x"))
    claim = "The GW objective merges models in pairs or trios"
    free = [e for e in study.plans() if e.name == f"{GW_PLAN} (no group cap)"]
    plan = free[0].plan if free else study.plan(GW_PLAN)
    largest = max(len(g) for g in plan)
    out.append(claims.Claim("gw", claim, "groups of 2-3", f"largest group {largest}", "held" if largest <= 3 else
                            "not held", f"{base}; the plan of the paper's objective without this book's cap of "
                            f"{study.settings.max_group_size}: {merge_plans.format_plan(plan)}"))
    lw = f"{GW_PLAN}, layer-wise coefficients"
    claim = "Adaptive layer-wise merging would narrow the gap to the pre-merge models (future work)"
    if lw not in mean.index:
        out.append(claims.not_tested("gw", claim, "-", "no layer-wise coefficients in this run (see the profile)"))
    elif not gap > 0:
        out.append(claims.not_tested("gw", claim, "-", f"{base}; the GW plan's merged models are not below the "
                                     "pre-merge ones here: there is no gap to narrow"))
    else:
        closed = (mean.loc[lw, main] - mean.loc[GW_PLAN, main]) / gap
        out.append(claims.Claim("gw", claim, "-", f"{closed:+.0%} of the gap closed ({main})",
                                "held" if closed > 0.1 else "partly" if closed > 0 else "not held",
                                f"{base}; AdaMerging-style per-task, per-layer coefficients fitted on validation "
                                "responses against TIES with settings chosen on validation; held if it closes more "
                                "than a tenth of the gap"))
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
        parts.append(f"Resampling the responses gave the exact solver's plan back {int(boot['same_as_exact_plan'].sum())} "
                     f"times in {len(boot)}.")
    return " ".join(parts)
