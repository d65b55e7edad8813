"""The chapter's report: the UniMoE paper's tables beside ours (in its layouts), the figures its
prose and claims quote, which of its claims held here, and the chapter's prose, every number
from the results."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .. import claims, published, verdicts
from ..claims import WALL_CLOCK_NOTE
from ..verdicts import BY_CONSTRUCTION
from . import layers as moe
from .evidence import ADAPTED, FROZEN_SUFFIX, NO_REHEARSAL, Evidence
from .judging import HEADLINE, NAMES, Judge, distinct_preferences
from .protocol import (DENSE, FROZEN, GUIDED, INDIVIDUAL, METHODS, METRICS, MTL, MTL_KD, OUT_OF_FOLD, SINGLE, UNIMOE,
                       StudySetup)


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
    long = table[table["task"].isin(cols)].melt(id_vars=["method", "task"], value_vars=list(METRICS),
                                                var_name="metric", value_name="value")
    wide = long.pivot_table(index=["metric", "method"], columns="task", values="value", sort=False)[cols]
    order = {m: i for i, m in enumerate(METRICS)}
    wide = wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort")
    if number_of:
        wide = wide.rename(columns={t: f"{number_of[t]}: {t}" for t in tasks if t in number_of})
    return wide.reset_index(drop=True)


def table3_vs_paper(table3: pd.DataFrame) -> pd.DataFrame:
    """Per method and metric: our average over the training tasks and the paper's printed average."""
    _, paper, _ = published.unimoe_table3()
    ours = table3[table3["task"] == "average"].melt(id_vars=["method"], value_vars=list(METRICS), var_name="metric",
                                                    value_name="ours")
    out = ours.merge(paper.rename(columns={"value": "paper"}), on=["method", "metric"], how="left")
    return out[["metric", "method", "ours", "paper"]].sort_values(["metric", "method"], key=lambda c: c.map(
        {m: i for i, m in enumerate((*METRICS, *METHODS))}), kind="mergesort").reset_index(drop=True)


def table5_vs_paper(generalization: pd.DataFrame) -> pd.DataFrame:
    """metric, method, then per held-out task ours and the paper's (its Tasks 8-9 mapped by name)."""
    paper, _ = published.unimoe_table5()
    ours = generalization.melt(id_vars=["method", "task"], value_vars=list(METRICS), var_name="metric",
                               value_name="ours")
    both = ours.merge(paper[["method", "metric", "task", "value"]].rename(columns={"value": "paper"}),
                      on=["method", "metric", "task"], how="left")
    wide = both.pivot_table(index=["metric", "method"], columns="task", values=["ours", "paper"], sort=False)
    wide.columns = [f"{task} ({src if src == 'ours' else 'paper'})" for src, task in wide.columns]
    order = {m: i for i, m in enumerate(METRICS)}
    return wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort").reset_index(drop=True)


def forgetting_vs_paper(forgetting: pd.DataFrame) -> pd.DataFrame:
    """metric, before, after, drop, after and drop without rehearsal (the control, when the table has it),
    MTL, and the paper's before, after and drop."""
    paper, _ = published.unimoe_forgetting()
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

    def versus(a: str, b: str, metrics) -> str:
        return ", ".join(f"{NAMES[m]} {pav[(a, m)]:.3f} vs {pav[(b, m)]:.3f}" for m in metrics)

    def ours(v, a: str, b: str, tasks) -> str:
        p = judge.paired(HEADLINE, a, b, tasks)
        x, y = p.values()
        held = f"{sum(v.held_each)} of {len(v.held_each)} held (Holm); " if v.held_each else ""
        seeds = f" ({p.seeds[0]} and {p.seeds[1]} seeds pooled)" if max(p.seeds) > 1 else ""
        return f"{held}kappa {x:.3f} vs {y:.3f}{seeds}, {claims.interval_text(v)}"

    avg = "each metric's average over the training tasks' test responses (plain mean over tasks, as Table 3)"
    metrics = paper_ahead(UNIMOE, [MTL])
    v = judge.beats(UNIMOE, MTL, old, metrics)
    out.append(claims.judged("moe", "UniMoE (no KD) beats MTL on the average of Tasks 1-7",
                             versus(UNIMOE, MTL, metrics), v, f"{avg}; the metrics where the paper has UniMoE ahead",
                             ours(v, UNIMOE, MTL, old)))
    out.append(_control_claim(
        judge, UNIMOE + FROZEN_SUFFIX, DENSE, old, metrics, "Routing, not capacity: UniMoE beats a dense block of "
        "its size (one expert as wide as its experts together; beyond the paper)", f"{avg}; the control for the "
        "claim above: the same block and parameters without a gate to route by; both over the frozen encoder, "
        "where the search ran", ours))
    out.append(_control_claim(
        judge, GUIDED + FROZEN_SUFFIX, MTL_KD, old, paper_ahead(GUIDED, [MTL]), "UniMoE-Guided's lead over MTL is "
        "more than distillation: UniMoE-Guided beats MTL distilled alike (beyond the paper)", f"{avg}; MTL trained "
        "with UniMoE-Guided's lambda_KD from the same teachers, both over the frozen encoder; the metrics where the "
        "paper has UniMoE-Guided above MTL", ours))
    out += encoder_claims(setup, judge, avg, ours)
    metrics = paper_ahead(GUIDED, [UNIMOE])
    v = judge.beats(GUIDED, UNIMOE, old, metrics)
    out.append(claims.judged("moe", "Distillation improves UniMoE: UniMoE-Guided above UniMoE on the average of "
                             "Tasks 1-7", versus(GUIDED, UNIMOE, metrics), v, f"{avg}; the metrics where the paper "
                             "has UniMoE-Guided ahead", ours(v, GUIDED, UNIMOE, old)))
    rivals = [MTL, UNIMOE, INDIVIDUAL]
    metrics = paper_ahead(GUIDED, rivals)
    v, best = judge.beats_each(GUIDED, rivals, old, metrics)
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
    v = judge.beats_per_task(g_new, m_new, new, METRICS)
    out.append(claims.judged("moe", "Adapted UniMoE-Guided beats MTL on the held-out tasks on every metric",
                             f"{int((p5[GUIDED] > p5[MTL]).sum())} of {len(p5)} (Tasks 8-9, 4 metrics)", v,
                             "one paired bootstrap per held-out task and metric; MTL: frozen encoder, new head only; "
                             "UniMoE-Guided: new head and MoE with rehearsal", ours(v, g_new, m_new, new)))
    v = judge.beats_per_task(INDIVIDUAL, g_new, new, METRICS)
    out.append(claims.judged("moe", "Per-task models remain the upper bound on the held-out tasks",
                             f"{int((p5[INDIVIDUAL] >= p5[GUIDED]).sum())} of {len(p5)} at or above UniMoE-Guided", v,
                             "Individual above the adapted UniMoE-Guided, one paired bootstrap per held-out task and "
                             "metric", ours(v, INDIVIDUAL, g_new, new)))
    pk = pf["forgetting"]["kappa"]
    v, why = judge.small_cost(GUIDED, g_new, old)
    x, y = judge.paired(HEADLINE, GUIDED, g_new, old).values()
    out.append(claims.judged("moe", f"Adaptation costs the old tasks a little (kappa {pk['before']:.4f} -> "
                             f"{pk['after']:.4f})", f"drop {pk['before'] - pk['after']:.3f}", v,
                             f"kappa before minus after on the training tasks' test responses, held when its 95% "
                             f"interval lies in (0, {judge.small_drop:g}] (the profile's claims.small_drop); {why}",
                             f"kappa {x:.3f} -> {y:.3f}, drop {claims.interval_text(v)}"))
    forgetting = pf["forgetting"]
    out.append(_control_claim(
        judge, g_new, g_new + NO_REHEARSAL, old, METRICS, "Rehearsal limits what adaptation costs the old tasks: "
        "adapted UniMoE-Guided above the same adaptation without rehearsal on Tasks 1-7 (beyond the paper)",
        f"{avg}; the control trains the same parameters on the new tasks alone", ours))
    v = judge.beats(g_new, m_new, old, METRICS)
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
    freezing = ("Freezing the shared encoder costs the multi-task models: MTL, UniMoE and UniMoE-Guided each score "
                "higher with its top layer(s) trained (beyond the paper)")
    transfer = ("MTL suffers negative transfer: the shared layer trained on every task scores below the same layer "
                "trained on each task alone (the paper's premise, beyond its tables)")
    if SINGLE not in judge.ev.preds:
        why = "this profile keeps the whole encoder frozen (moe.trainable_layers: 0), so nothing shared trains"
        return [claims.not_tested("moe", freezing, "-", why), claims.not_tested("moe", transfer, "-", why)]
    parts = [judge.compare(judge.paired(HEADLINE, m, m + FROZEN_SUFFIX, old)) for m in (MTL, UNIMOE, GUIDED)]
    v = verdicts.compare_all(parts, parts[-1])
    x, y = judge.paired(HEADLINE, GUIDED, GUIDED + FROZEN_SUFFIX, old).values()
    held = f"{sum(v.held_each)} of 3 held (Holm); "
    out = [claims.judged("moe", freezing, "-", v, f"kappa ({trained}) minus kappa (frozen encoder), one paired "
                         f"bootstrap per method, Holm over the three; {avg}; effect: UniMoE-Guided's",
                         f"{held}UniMoE-Guided kappa {x:.3f} vs {y:.3f}, {claims.interval_text(v)}")]
    v = judge.beats(SINGLE, MTL, old, METRICS)
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


# ---- the chapter's prose -----------------------------------------------------------
def teacher_text(setup: StudySetup, teacher_fit: pd.DataFrame) -> str:
    """What the teachers' logits are on this run, from their fit on training and validation responses."""
    fit = teacher_fit.groupby("split")[["per_label_accuracy", "confidence"]].mean()
    tr, va = fit.loc["train"], fit.loc["val"]
    if setup.settings.teacher:
        who = (f"Here each task's teacher is {setup.teacher_settings.backbone}, fine-tuned on that task "
               f"({'with LoRA' if setup.teacher_settings.lora else 'whole'}).")
    else:
        who = ("Here the teachers are the per-task scorers: the same backbone as the student. That does not make "
               "them redundant: they fine-tuned layers the multi-task models keep frozen"
               if setup.frozen_encoder else "Here the teachers are the per-task scorers: the same backbone as "
               "the student, each trained on one task only")
        who += ", so their soft labels can carry what the student cannot compute itself (Individual in Table 3 " \
               "below is the teachers' own test score)."
    gap = tr["per_label_accuracy"] - va["per_label_accuracy"]
    return (f"{who} Their logits on the training responses are in-sample (the paper's public code computes its "
            f"teacher probabilities on its training split too): on the responses they trained on they agree with the labels on "
            f"{tr['per_label_accuracy']:.3f} of the rubric dimensions, on validation responses they never saw on "
            f"{va['per_label_accuracy']:.3f} ({gap:+.3f}), with a mean confidence |2p - 1| of "
            f"{tr['confidence']:.2f} against {va['confidence']:.2f}. "
            + ("So the in-sample logits are only a little closer to the labels than held-out ones would be. "
               if gap < 0.05 else "So the in-sample logits mostly hand the labels back, softened. ")
            + "Out-of-fold logits (each response scored by its task's teacher retrained without it) would carry the "
              f"teachers' errors on unseen responses instead; they are one setting away (`moe.teacher_folds`"
              f"{', ' + str(setup.settings.teacher_folds) + ' on this profile, in the comparison below' if setup.settings.teacher_folds else ''}), "
              "at k fine-tunes of every teacher.")


def freezing_text(setup: StudySetup, freezing: pd.DataFrame) -> str:
    """What freezing the encoder costs each multi-task model and how much of UniMoE-Guided's gap to the
    per-task models it explains, read off the study's freezing table (method, encoder, metrics)."""
    f = freezing.set_index(["method", "encoder"])["kappa"]
    ind = f[(INDIVIDUAL, "-")]
    frozen = {m: f[(m, FROZEN)] for m in (MTL, UNIMOE, GUIDED)}
    if setup.frozen_encoder:
        return (f"With the encoder frozen, MTL's heads share nothing: each reads the same frozen features, so MTL "
                f"here is the per-task scorers without the fine-tuning of their top layers. The gap between them, "
                f"{ind - frozen[MTL]:+.3f} in average kappa, is what this profile's frozen encoder costs a model "
                f"without the MoE block; the paper's MTL, which fine-tunes its encoder, is {_paper_gap():+.3f} behind "
                f"its Individual models. Nothing on this profile separates that cost from the method's.")
    label = setup.encoder_label
    trained = {m: f[(m, label)] for m in (MTL, UNIMOE, GUIDED)}
    single = f.get((SINGLE, label))
    moves = "; ".join(f"{m} {frozen[m]:.3f} to {trained[m]:.3f} ({trained[m] - frozen[m]:+.3f})" for m in trained)
    gap_f, gap_t = ind - frozen[GUIDED], ind - trained[GUIDED]
    out = (f"Training the shared encoder's {label.replace(' trained', '')} moves average kappa: {moves}. "
           f"UniMoE-Guided's gap to the per-task models is {gap_f:+.3f} with the encoder frozen and {gap_t:+.3f} "
           f"with it trained: freezing accounts for {gap_f - gap_t:+.3f} of it and {gap_t:+.3f} stays between the "
           f"method and the per-task scorers, which still train {scorer_layers(setup)} each, one task apiece. "
           f"The paper's MTL is {_paper_gap():+.3f} behind its Individual models.")
    if single is not None:
        out += (f" The same MTL start with the layer trained on each task alone reaches {single:.3f} against MTL's "
                f"{trained[MTL]:.3f}: what sharing the layer across the tasks does ({trained[MTL] - single:+.3f}; "
                f"negative when sharing hurts, the paper's negative transfer). The claims below judge these "
                f"differences on paired test responses.")
    return out


def balancing_text(balancing: pd.DataFrame) -> str:
    """What the load-balancing weight does to routing, read off :meth:`ModelSelection.load_balancing`."""
    b = balancing.sort_values("lambda_lb")
    if len(b) < 2:
        return "One weight of the load-balancing term only (moe.lb_probe is empty): nothing to compare."
    lo, hi, at = b.iloc[0], b.iloc[-1], b[b["chosen"]].iloc[0]
    uniform = "more uniform" if hi["task_entropy"] > lo["task_entropy"] else "less uniform"
    apart = "closer together" if hi["task_js"] < lo["task_js"] else "further apart"
    return (f"From λ_LB {lo['lambda_lb']:g} to {hi['lambda_lb']:g} each task's routing becomes {uniform} (mean "
            f"entropy {lo['task_entropy']:.2f} to {hi['task_entropy']:.2f} bits, of {lo['max_entropy']:.2f} for "
            f"uniform routing) and the tasks' usage moves {apart} (mean Jensen-Shannon distance "
            f"{lo['task_js']:.3f} to {hi['task_js']:.3f}); {int(lo['favourites'])} and {int(hi['favourites'])} "
            f"distinct favourite experts; validation kappa {lo['val_kappa']:.3f} and {hi['val_kappa']:.3f}. At the "
            f"chosen λ_LB {at['lambda_lb']:g} the term adds at most {at['lambda_lb'] * at['max_task_lb']:.4f} to a "
            f"batch's loss. Since a batch holds one task, the term measures that task's own routing: it rewards "
            f"every task spreading over every expert, not the tasks sharing the experts out between them.")


def seeds_text(seeds: pd.DataFrame) -> str:
    """How far the frozen column's models move between seeds (``seeds``: model, seed, metrics)."""
    n = seeds["seed"].nunique()
    if n < 2:
        return "One seed on this profile (moe.seeds: 1): the spread between seeds is not measured."
    k = seeds.groupby("model", sort=False)["kappa"]
    spread = "; ".join(f"{m} {mean:.3f} ± {sd:.3f}" for m, mean, sd in zip(k.mean().index, k.mean(), k.std()))
    return (f"Average kappa over {n} seeds (mean ± sd, frozen encoder): {spread}. The largest sd, "
            f"{k.std().max():.3f}, is the scale of what one seed of the trained column may move by; the claims "
            f"on the frozen column's models pool every seed's predictions.")


def scorer_layers(setup: StudySetup) -> str:
    """What of the encoder the per-task scorers train, in words (from the profile's ``train`` settings)."""
    k = setup.profile.train.trainable_layers
    return "every encoder layer" if k is None else "their top layer" if k == 1 else f"their top {k} layers"


def _paper_gap() -> float:
    p = paper_figures()["table3"]
    return p[(INDIVIDUAL, "kappa")] - p[(MTL, "kappa")]


def summary_text(setup: StudySetup, table3: pd.DataFrame, usage: pd.DataFrame, specialisation: dict,
                 resources: pd.DataFrame, generalization: pd.DataFrame, forgetting: pd.DataFrame,
                 variants: pd.DataFrame, controls: pd.DataFrame | None = None) -> str:
    """The chapter's findings in a few sentences, every number from the results (``controls``: the dense
    block and MTL + KD beside the models they control for, :meth:`ModelSelection.controls`)."""
    avg = table3[table3["task"] == "average"].set_index("method")
    k = {m: avg.loc[m, "kappa"] for m in METHODS}
    res = resources.set_index("model")
    ind = [i for i in res.index if i.startswith(INDIVIDUAL)][0]
    g = generalization.groupby("method")["kappa"].mean()
    f = forgetting.set_index("metric")
    top = usage.idxmax(axis=1)
    v = variants.set_index("variant")
    pf = paper_figures()
    pk = ", ".join(f"{pf['table3'][(m, 'kappa')]:.3f}" for m in METHODS)
    p5 = {m: pf["table5"][(m, "kappa")] for m in (GUIDED, MTL, INDIVIDUAL)}
    pfk = pf["forgetting"]["kappa"]
    parts = [
        f"Average Cohen's kappa over the {len(setup.old)} training tasks (test split; the multi-task models: "
        f"{setup.encoder_label}): Individual {k[INDIVIDUAL]:.3f}, "
        f"MTL {k[MTL]:.3f}, UniMoE {k[UNIMOE]:.3f}, UniMoE-Guided {k[GUIDED]:.3f} (the paper, in that order: {pk}).",
        f"The MoE block {'adds' if k[UNIMOE] > k[MTL] else 'does not add'} to MTL here "
        f"({k[UNIMOE] - k[MTL]:+.3f}), and distillation {'adds' if k[GUIDED] > k[UNIMOE] else 'does not add'} to "
        f"UniMoE ({k[GUIDED] - k[UNIMOE]:+.3f}); the per-task scorers stay "
        f"{'ahead' if k[INDIVIDUAL] > k[GUIDED] else 'behind'} ({k[INDIVIDUAL] - k[GUIDED]:+.3f}).",
        f"Each task routes most of its gate weight to one expert (largest share {usage.max(axis=1).max():.0%}, "
        f"smallest top share {usage.max(axis=1).min():.0%}); {top.nunique()} of {usage.shape[1]} experts are some "
        f"task's favourite."]
    if np.isfinite(specialisation.get("p_value", np.nan)):
        parts.append(f"Tasks of one planted family route more alike than others (mean Jensen-Shannon distance "
                     f"{specialisation['within_family_js']:.2f} within families against "
                     f"{specialisation['between_family_js']:.2f} between; permutation p = "
                     f"{specialisation['p_value']:.3f}).")
    if controls is not None and len(controls):
        c = controls.set_index("model")["kappa"]
        parts.append(f"The controls, over the frozen encoder: a dense block of UniMoE's size, without routing, "
                     f"averages kappa {c[DENSE]:.3f} "
                     f"(UniMoE {c[UNIMOE]:.3f}), and MTL distilled from the same teachers {c[MTL_KD]:.3f} (MTL "
                     f"{c[MTL]:.3f}); the claims below judge both differences on paired test responses.")
    parts.append(f"One UniMoE-Guided model takes {res.loc[ind, 'disk_mb'] / res.loc[GUIDED, 'disk_mb']:.1f}x less disk "
                 f"than the {len(setup.old)} per-task models (the paper: "
                 f"{pf['table4']['Individual']['relative_size']:.2f}x) at "
                 f"{res.loc[GUIDED, 'latency_ms_batch1'] / res.loc[MTL, 'latency_ms_batch1']:.2f}x MTL's latency.")
    parts.append(f"On the held-out tasks the adapted UniMoE-Guided averages kappa {g[GUIDED]:.3f} against MTL's "
                 f"{g[MTL]:.3f} and the per-task scorers' {g[INDIVIDUAL]:.3f} (the paper: {p5[GUIDED]:.3f}, "
                 f"{p5[MTL]:.3f}, {p5[INDIVIDUAL]:.3f}); the "
                 f"old tasks' kappa moves from {f.loc['kappa', 'before']:.3f} to {f.loc['kappa', 'after']:.3f} "
                 f"(the paper: {pfk['before']:.3f} to {pfk['after']:.3f}).")
    if {moe.TOKENS, moe.POOLED} <= set(v.index):
        parts.append(f"With the same epoch cap, experts on every token (the paper's text) reach kappa "
                     f"{v.loc[moe.TOKENS, 'kappa']:.3f} and experts on the pooled vector (its code's placement, one "
                     "block) "
                     f"{v.loc[moe.POOLED, 'kappa']:.3f}, at {v.loc[moe.TOKENS, 'seconds_per_epoch']:.1f} "
                     f"against {v.loc[moe.POOLED, 'seconds_per_epoch']:.1f} seconds an epoch.")
    if OUT_OF_FOLD in v.index:
        parts.append(f"Out-of-fold teacher logits give kappa {v.loc[OUT_OF_FOLD, 'kappa']:.3f} against "
                     f"{k[GUIDED]:.3f} with in-sample ones.")
    return " ".join(parts)
