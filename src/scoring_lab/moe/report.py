"""The chapter's report: the UniMoE paper's tables beside ours (in its layouts), the figures its
prose and claims quote, and which of its claims held here, every number from the results (the prose:
:mod:`.prose`). On scored (multi-class) tasks the paper's figures, all of rubric dimensions, are not
set beside ours: no metric of a score is the same quantity."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .. import claims, published, verdicts
from ..claims import WALL_CLOCK_NOTE
from ..verdicts import BY_CONSTRUCTION
from . import layers as moe
from .evidence import ADAPTED, CONTINUED_SUFFIX, FROZEN_SUFFIX, NO_REHEARSAL, Evidence
from .judging import HEADLINE, NAMES, Judge, distinct_preferences
from .protocol import (DENSE, GUIDED, INDIVIDUAL, METHODS, METRICS, MTL, MTL_KD, SINGLE, UNIMOE, StudySetup,
                       ours_for)

EVERY_METRIC = (*METRICS, "accuracy")   # every table metric of either kind, in the tables' order


def metrics_in(table: pd.DataFrame) -> list[str]:
    """The table metrics a table has columns for (the run's kind's), in order."""
    return [m for m in EVERY_METRIC if m in table.columns]


# ---- the paper's figures and tables beside ours ------------------------------------
def paper_figures() -> dict:
    """The paper's figures the chapter's prose and claims quote, read from its transcribed tables:
    Table 3 averages {(method, metric): value}, Table 5 means over its Tasks 8-9 {(method, metric): value},
    Table 4 by model, the forgetting rows by metric, and its quoted expert shares."""
    _, avg, _ = published.unimoe_table3()
    t5, _ = published.unimoe_table5()
    t4, _ = published.unimoe_table4()
    forget, _ = published.unimoe_forgetting()
    return {"table3": avg.set_index(["method", "metric"])["value"].to_dict(),
            "table5": t5.groupby(["method", "metric"])["value"].mean().to_dict(),
            "table4": t4.set_index("model").to_dict("index"),
            "forgetting": forget.set_index("metric").to_dict("index"),
            "usage": published.unimoe_expert_usage()}


def paper_table3() -> tuple[pd.DataFrame, str]:
    """The paper's Table 3 in this chapter's long layout (method, task, the four metrics), its printed
    averages as task 'average'; and its source."""
    long, average, source = published.unimoe_table3()
    per_task = long.pivot_table(index=["method", "task"], columns="metric", values="value").reset_index()
    avg = average.pivot_table(index="method", columns="metric", values="value").reset_index().assign(task="average")
    return pd.concat([per_task, avg], ignore_index=True)[["method", "task", *METRICS]], source


def load_balancing_ceiling(n_experts: int, lambda_lb: float) -> str:
    """"0.0019 (lambda_LB 0.01 times 0.19)": the largest the weighted load-balancing term can be, reached when
    one expert takes every response of a batch: L_LB <= (M - 1) / M^2
    (:func:`~scoring_lab.moe.layers.load_balancing_loss`)."""
    ceiling = (n_experts - 1) / n_experts ** 2
    return f"{lambda_lb * ceiling:.2g} (λ_LB {lambda_lb:g} times {ceiling:.2g})"


def wide_table(table: pd.DataFrame, tasks: list[str], number_of: dict[str, int] | None = None) -> pd.DataFrame:
    """metric x method rows, one column per task (the paper's layout) from a long method-task table; a task
    the table does not have (the paper's table on another source's tasks) has no column."""
    have = set(table["task"])
    tasks = [t for t in tasks if t in have]
    cols = [*tasks, "average"] if "average" in have else list(tasks)
    long = table[table["task"].isin(cols)].melt(id_vars=["method", "task"], value_vars=metrics_in(table),
                                                var_name="metric", value_name="value")
    wide = long.pivot_table(index=["metric", "method"], columns="task", values="value", sort=False)[cols]
    order = {m: i for i, m in enumerate(EVERY_METRIC)}
    wide = wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort")
    if number_of:
        wide = wide.rename(columns={t: f"{number_of[t]}: {t}" for t in tasks if t in number_of})
    return wide.reset_index(drop=True)


def _paper_of(paper: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The paper's rows where they can stand beside ours: all of them on rubric dimensions, none on scores."""
    return paper if kind == "multilabel" else paper.iloc[:0]


def table3_vs_paper(table3: pd.DataFrame, kind: str = "multilabel") -> pd.DataFrame:
    """Per method and metric: our average over the training tasks and the paper's printed average (empty for
    scored tasks, whose metrics the paper does not have)."""
    _, paper, _ = published.unimoe_table3()
    ours = table3[table3["task"] == "average"].melt(id_vars=["method"], value_vars=metrics_in(table3),
                                                    var_name="metric", value_name="ours")
    out = ours.merge(_paper_of(paper, kind).rename(columns={"value": "paper"}), on=["method", "metric"], how="left")
    return out[["metric", "method", "ours", "paper"]].sort_values(["metric", "method"], key=lambda c: c.map(
        {m: i for i, m in enumerate((*EVERY_METRIC, *METHODS))}), kind="mergesort").reset_index(drop=True)


def table5_vs_paper(generalization: pd.DataFrame, kind: str = "multilabel") -> pd.DataFrame:
    """metric, method, then per held-out task ours and the paper's (its Tasks 8-9 mapped by name; none for
    scored tasks)."""
    paper, _ = published.unimoe_table5()
    ours = generalization.melt(id_vars=["method", "task"], value_vars=metrics_in(generalization), var_name="metric",
                               value_name="ours")
    both = ours.merge(_paper_of(paper, kind)[["method", "metric", "task", "value"]].rename(
        columns={"value": "paper"}), on=["method", "metric", "task"], how="left")
    wide = both.pivot_table(index=["metric", "method"], columns="task", values=["ours", "paper"], sort=False,
                            dropna=False)
    wide.columns = [f"{task} ({src if src == 'ours' else 'paper'})" for src, task in wide.columns]
    order = {m: i for i, m in enumerate(EVERY_METRIC)}
    return wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort").reset_index(drop=True)


def forgetting_vs_paper(forgetting: pd.DataFrame, kind: str = "multilabel") -> pd.DataFrame:
    """metric, before, after, drop, after and drop without rehearsal (the control, when the table has it),
    MTL, and the paper's before, after and drop (none for scored tasks)."""
    paper, _ = published.unimoe_forgetting()
    paper = _paper_of(paper, kind)
    out = forgetting.rename(columns={"mtl": "MTL"}).assign(drop=lambda d: d["before"] - d["after"])
    bare = []
    if "after_no_rehearsal" in out.columns:
        out["drop_no_rehearsal"] = out["before"] - out["after_no_rehearsal"]
        bare = ["after_no_rehearsal", "drop_no_rehearsal"]
    paper = paper.rename(columns={"before": "before (paper)", "after": "after (paper)"})
    paper["drop (paper)"] = paper["before (paper)"] - paper["after (paper)"]
    return out.merge(paper, on="metric", how="left")[["metric", "before", "after", "drop", *bare, "MTL",
                                                      "before (paper)", "after (paper)", "drop (paper)"]]


def numbering_table(setup: StudySetup) -> pd.DataFrame:
    """The UniMoE paper's task numbers, the task names they map to, and each task's role here."""
    table, _ = published.task_numbering("moe")
    table = table[table["task"].isin(setup.tasks)].copy()
    table["role"] = np.where(table["task"].isin(setup.new), "held out: adaptation (Table 5)",
                             "training (Table 3)")
    fam = setup.families()
    if fam:
        table["planted family"] = table["task"].map(fam)
    return table.reset_index(drop=True)


# ---- which of the paper's claims held ----------------------------------------------
def moe_claims(setup: StudySetup, resources: pd.DataFrame, evidence: Evidence) -> list[claims.Claim]:
    """Which of the UniMoE paper's claims held here: the comparisons judged on the same test responses
    (:mod:`.judging`: paired bootstraps, Holm, equivalence, bands), the figures that follow from the
    architecture marked by construction. Adds its seconds to ``setup.timing``."""
    t0 = time.perf_counter()
    judge = Judge.of(evidence, setup.profile.claims)
    old, new = setup.old, setup.new
    pf = paper_figures()
    pav, t4 = pf["table3"], pf["table4"]
    g_new, m_new = GUIDED + ADAPTED, MTL + ADAPTED
    out = []

    def paper_ahead(a: str, rivals) -> list[str]:
        return [m for m in METRICS if all(pav[(a, m)] > pav[(r, m)] for r in rivals)]

    def mine(paper_metrics) -> list[str]:   # ours that stand for the paper's (the same on rubric dimensions)
        return ours_for(paper_metrics, setup.kind)

    def versus(a: str, b: str, metrics) -> str:
        return ", ".join(f"{NAMES[m]} {pav[(a, m)]:.3f} vs {pav[(b, m)]:.3f}" for m in metrics)

    def ours(v, a: str, b: str, tasks) -> str:
        p = judge.paired(HEADLINE, a, b, tasks)
        x, y = p.values()
        held = f"{sum(v.held_each)} of {len(v.held_each)} held (Holm); " if v.held_each else ""
        seeds = f" ({p.seeds[0]} and {p.seeds[1]} seeds pooled)" if max(p.seeds) > 1 else ""
        return f"{held}{head} {x:.3f} vs {y:.3f}{seeds}, {claims.interval_text(v)}"

    head = "kappa" if setup.kind == "multilabel" else "QWK"
    avg = "each metric's average over the training tasks' test responses (plain mean over tasks, as Table 3)"
    if setup.kind != "multilabel":
        avg += ("; the tasks carry scores, so kappa is quadratic weighted, macro-F1 is over classes and accuracy "
                "stands for the paper's micro-F1 and per-label accuracy")
    metrics = paper_ahead(UNIMOE, [MTL])
    v = judge.beats(UNIMOE, MTL, old, mine(metrics))
    out.append(claims.judged("moe", "UniMoE (no KD) beats MTL on the average of Tasks 1-7",
                             versus(UNIMOE, MTL, metrics), v, f"{avg}; the metrics where the paper has UniMoE ahead",
                             ours(v, UNIMOE, MTL, old)))
    out.append(_control_claim(
        judge, UNIMOE + FROZEN_SUFFIX, DENSE, old, mine(metrics), "Routing, not capacity: UniMoE beats a dense block of "
        "its size (one expert as wide as its experts together; beyond the paper)", f"{avg}; the control for the "
        "claim above: the same block and parameters without a gate to route by; both over the frozen encoder, "
        "where the search ran", ours))
    out.append(_control_claim(
        judge, GUIDED + FROZEN_SUFFIX, MTL_KD, old, mine(paper_ahead(GUIDED, [MTL])), "UniMoE-Guided's lead over MTL is "
        "more than distillation: UniMoE-Guided beats MTL distilled alike (beyond the paper)", f"{avg}; MTL trained "
        "with UniMoE-Guided's lambda_KD from the same teachers, both over the frozen encoder; the metrics where the "
        "paper has UniMoE-Guided above MTL", ours))
    out += encoder_claims(setup, judge, avg, ours)
    metrics = paper_ahead(GUIDED, [UNIMOE])
    v = judge.beats(GUIDED, UNIMOE, old, mine(metrics))
    out.append(claims.judged("moe", "Distillation improves UniMoE: UniMoE-Guided above UniMoE on the average of "
                             "Tasks 1-7", versus(GUIDED, UNIMOE, metrics), v, f"{avg}; the metrics where the paper "
                             "has UniMoE-Guided ahead", ours(v, GUIDED, UNIMOE, old)))
    rivals = [MTL, UNIMOE, INDIVIDUAL]
    metrics = paper_ahead(GUIDED, rivals)
    v, best = judge.beats_each(GUIDED, rivals, old, mine(metrics))
    left = [NAMES[m] for m in METRICS if m not in metrics]
    out.append(claims.judged(
        "moe", "UniMoE-Guided has the highest averages of Table 3 (above MTL, UniMoE and Individual)",
        "; ".join(versus(GUIDED, r, metrics) for r in rivals), v,
        "Individual included, as the paper's Table 3 has UniMoE-Guided above it on "
        f"{', '.join(NAMES[m] for m in metrics)}"
        + (f" (not on {', '.join(left)}, left out)" if left else "") + f"; {avg}; effect: kappa against the strongest "
        f"rival here, {best}", ours(v, GUIDED, best, old)))
    metrics = ["kappa", "macro_f1"]
    v = judge.matches_or_exceeds(GUIDED, INDIVIDUAL, old, metrics)
    out.append(claims.judged("moe", "UniMoE-Guided matches or exceeds the per-task models (kappa, macro-F1)",
                             versus(GUIDED, INDIVIDUAL, metrics), v, f"matches: within ±{judge.margin:g} (the "
                             f"profile's claims.equivalence_margin); {avg}", ours(v, GUIDED, INDIVIDUAL, old)))
    out += _built_claims(setup, resources, t4)
    out.append(usage_claim(judge, pf["usage"]))
    t5, _ = published.unimoe_table5()
    p5 = t5.pivot_table(index=["task", "metric"], columns="method", values="value")
    v = judge.beats_per_task(g_new, m_new, new, setup.metrics)
    out.append(claims.judged("moe", "Adapted UniMoE-Guided beats MTL on the held-out tasks on every metric",
                             f"{int((p5[GUIDED] > p5[MTL]).sum())} of {len(p5)} (Tasks 8-9, 4 metrics)", v,
                             "one paired bootstrap per held-out task and metric; MTL: frozen encoder, new head only; "
                             "UniMoE-Guided: new head and MoE with rehearsal", ours(v, g_new, m_new, new)))
    v = judge.beats_per_task(INDIVIDUAL, g_new, new, setup.metrics)
    out.append(claims.judged("moe", "Per-task models remain the upper bound on the held-out tasks",
                             f"{int((p5[INDIVIDUAL] >= p5[GUIDED]).sum())} of {len(p5)} at or above UniMoE-Guided", v,
                             "Individual above the adapted UniMoE-Guided, one paired bootstrap per held-out task and "
                             "metric", ours(v, INDIVIDUAL, g_new, new)))
    pk = pf["forgetting"]["kappa"]
    v, why = judge.small_cost(GUIDED, g_new, old)
    x, y = judge.paired(HEADLINE, GUIDED, g_new, old).values()
    out.append(claims.judged("moe", f"Adaptation costs the old tasks a little (kappa {pk['before']:.4f} -> "
                             f"{pk['after']:.4f})", f"drop {pk['before'] - pk['after']:.3f}", v,
                             f"{head} before minus after on the training tasks' test responses, held when its 95% "
                             f"interval lies in (0, {judge.small_drop:g}] (the profile's claims.small_drop); {why}",
                             f"{head} {x:.3f} -> {y:.3f}, drop {claims.interval_text(v)}"))
    forgetting = pf["forgetting"]
    out.append(_control_claim(
        judge, g_new, g_new + NO_REHEARSAL, old, setup.metrics, "Rehearsal limits what adaptation costs the old tasks: "
        "adapted UniMoE-Guided above the same adaptation without rehearsal on Tasks 1-7 (beyond the paper)",
        f"{avg}; the control trains the same parameters on the new tasks alone", ours))
    v = judge.beats(g_new, m_new, old, setup.metrics)
    out.append(claims.judged("moe", "After adaptation the old tasks stay above MTL",
                             f"{sum(forgetting[m]['after'] > pav[(MTL, m)] for m in METRICS)} of {len(METRICS)}", v,
                             f"adapted UniMoE-Guided against MTL; {avg}", ours(v, g_new, m_new, old)))
    setup.timing["claims (paired bootstraps)"] = time.perf_counter() - t0
    return out


def encoder_claims(setup: StudySetup, judge: Judge, avg: str, ours) -> list[claims.Claim]:
    """Beyond the paper, where the chapter trains the encoder's top layers: what freezing the encoder costs
    each multi-task model, and whether sharing the trained layer across tasks costs MTL (negative transfer,
    against the same model trained one task at a time); ``not tested`` over a wholly frozen encoder."""
    old, trained = setup.old, setup.encoder_label
    head = "kappa" if setup.kind == "multilabel" else "QWK"
    freezing = ("Freezing the shared encoder costs the multi-task models: MTL, UniMoE and UniMoE-Guided each score "
                "higher with its top layer(s) trained (beyond the paper)")
    transfer = ("MTL suffers negative transfer: the shared layer trained on every task scores below the same layer "
                "trained on each task alone (the paper's premise, beyond its tables)")
    if SINGLE not in judge.ev.preds:
        why = "this profile keeps the whole encoder frozen (moe.trainable_layers: 0), so nothing shared trains"
        return [claims.not_tested("moe", freezing, "-", why), claims.not_tested("moe", transfer, "-", why)]
    # against the frozen models trained on as long (the control for the extra epochs) where the run has them
    control = CONTINUED_SUFFIX if GUIDED + CONTINUED_SUFFIX in judge.ev.preds else FROZEN_SUFFIX
    parts = [judge.compare(judge.paired(HEADLINE, m, m + control, old)) for m in (MTL, UNIMOE, GUIDED)]
    v = verdicts.compare_all(parts, parts[-1])
    x, y = judge.paired(HEADLINE, GUIDED, GUIDED + control, old).values()
    held = f"{sum(v.held_each)} of 3 held (Holm); "
    against = ("each frozen-encoder model trained on for the same epochs at the same rate with no layer trained "
               "(the control for the extra epochs)" if control == CONTINUED_SUFFIX else "the frozen encoder's models")
    out = [claims.judged("moe", freezing, "-", v, f"{head} ({trained}) minus {head} against {against}, one "
                         f"paired bootstrap per method, Holm over the three; {avg}; effect: UniMoE-Guided's",
                         f"{held}UniMoE-Guided {head} {x:.3f} vs {y:.3f}, {claims.interval_text(v)}")]
    v = judge.beats(SINGLE, MTL, old, setup.metrics)
    out.append(claims.judged("moe", transfer, "-", v, f"the control starts from MTL's frozen-encoder heads and trains "
                             f"the same layer ({trained}) with the same epochs and rate on one task at a time; held "
                             f"when it beats MTL; {avg}", ours(v, SINGLE, MTL, old)))
    return out


def _control_claim(judge: Judge, a: str, control: str, tasks, metrics, claim: str, note: str, ours) -> claims.Claim:
    """``a`` against a control model on ``metrics`` (a paired bootstrap each, Holm); ``not tested`` when the
    evidence has no predictions of the control."""
    if control not in judge.ev.preds:
        return claims.not_tested("moe", claim, "-", "this run trained no such control")
    v = judge.beats(a, control, tasks, metrics)
    return claims.judged("moe", claim, "-", v, note, ours(v, a, control, tasks))


def _built_claims(setup: StudySetup, resources: pd.DataFrame, t4: dict) -> list[claims.Claim]:
    """The claims that follow from the architecture: size on disk, a pooled MoE's latency, the teacher's size."""
    res = resources.set_index("model")
    ind = res.loc[[i for i in res.index if i.startswith(INDIVIDUAL)][0]]
    ratio = float(ind["disk_mb"] / res.loc[GUIDED, "disk_mb"])
    n_old = len(setup.old)
    paper_ratio = t4[INDIVIDUAL]["relative_size"]
    out = [claims.by_construction(
        "moe", "One UniMoE-Guided model is about 6x smaller on disk than the per-task models",
        f"{paper_ratio:.2f}x (7 BERT-base models)", f"{ratio:.2f}x ({n_old} models)",
        "held" if ratio >= 0.8 * n_old else "partly" if ratio >= 2 else "not held",
        f"follows from the architecture: one shared encoder replaces one per task, so the ratio is about the task "
        f"count; held when at least 80% of it ({0.8 * n_old:.1f}x); the paper's is {paper_ratio / 7:.0%} of its 7",
        ratio)]
    lat = float(res.loc[GUIDED, "latency_ms_batch1"] / res.loc[MTL, "latency_ms_batch1"])
    band = "held within 1.25x, partly within 1.5x"
    verdict = "held" if lat <= 1.25 else "partly" if lat <= 1.5 else "not held"
    claim, paper = "The MoE block adds little latency over MTL (14 vs 13 ms per response)", \
        f"{t4[GUIDED]['latency_ms'] / t4[MTL]['latency_ms']:.2f}x"
    if setup.settings.model.moe_on == moe.POOLED:
        out.append(claims.by_construction("moe", claim, paper, f"{lat:.2f}x (batch 1, this CPU)", verdict,
                                          f"{WALL_CLOCK_NOTE}; by construction: experts on the pooled vector add "
                                          f"{setup.settings.model.n_experts} small layers on one vector per response "
                                          f"to the encoder's cost; {band}", lat))
    else:
        out.append(claims.Claim("moe", claim, paper, f"{lat:.2f}x (batch 1, this CPU)", verdict,
                                f"{WALL_CLOCK_NOTE}: experts on every token; {band}; one machine, one run, no interval",
                                n=f"{setup.settings.latency_repeats} timed calls at batch 1, fastest of 2 rounds",
                                test="wall-clock ratio of UniMoE-Guided's latency to MTL's against the band",
                                effect=lat))
    if setup.settings.teacher:
        teach = [i for i in res.index if i.startswith("Teacher")][0]
        r = float(res.loc[teach, "disk_mb"] / res.loc[GUIDED, "disk_mb"])
        out.append(claims.by_construction("moe", "The teacher is far larger than the student (87x on disk)",
                                          f"{t4['Teacher']['relative_size']:.2f}x", f"{r:.2f}x",
                                          "held" if r >= 2 else "not held", "follows from the chosen backbones; held "
                                          "when the teacher is at least twice the student's size", r))
    else:
        out.append(claims.not_tested("moe", "The teacher is far larger than the student (87x on disk)",
                                     f"{t4['Teacher']['relative_size']:.2f}x", "on this profile the teachers are the "
                                     "per-task scorers, the student's own size", basis=BY_CONSTRUCTION))
    return out


def usage_claim(judge: Judge, quoted: dict) -> claims.Claim:
    """Tasks rely on experts with distinct preferences (the paper's Fig. 3): not tested where the model has
    fewer than two experts (or the run one training task), else :func:`.judging.distinct_preferences`."""
    claim = "Tasks rely on experts with distinct preferences (the paper's Fig. 3)"
    ev = judge.ev
    favs = ", ".join(f"Task {n} expert {e} ({x:.1%})" for _, n, e, x in quoted["examples"])
    paper = f"favourites {favs} of {quoted['n_experts']} experts"
    if not ev.gates:
        return claims.not_tested("moe", claim, paper, "the chosen model has no MoE block")
    m = next(iter(ev.gates.values())).shape[1]
    why = verdicts.reachable(2, min(m, len(ev.gates)), "the chosen model's experts and the training tasks (the "
                             "fewer of the two)")
    if why:
        return claims.not_tested("moe", claim, paper, f"distinct favourites are {why}")
    v, info = distinct_preferences(ev.gates, judge.n_resamples, judge.seed)
    counts = pd.Series(info["favourites"]).value_counts()
    favourites = ", ".join(f"expert {e}: {k} task{'s' if k > 1 else ''}" for e, k in counts.items())
    ours = (f"{info['distinct']} distinct favourites of {m} experts ({favourites}); mean JS distance "
            f"{claims.interval_text(v, signed=False)}")
    note = ("not held: every task favours the same expert" if v.verdict == verdicts.NOT_HELD else
            f"usage distance beyond resampling when above the permutations' 95th percentile {info['null_95']:.3f}")
    return claims.judged("moe", claim, paper, v, note, ours)
