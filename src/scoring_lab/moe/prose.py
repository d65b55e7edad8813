"""The chapter's prose: what the teachers' logits are, what freezing the encoder costs, what the
load-balancing term does, how far seeds move, and the findings in a few sentences, every number read
off the study's results; and how the run's metrics are named for its kind of task."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import layers as moe
from .protocol import (CONTINUED, DENSE, FROZEN, GUIDED, INDIVIDUAL, METHODS, MTL, MTL_KD, OUT_OF_FOLD, SINGLE, UNIMOE,
                       StudySetup)
from .report import paper_figures


def teacher_text(setup: StudySetup, teacher_fit: pd.DataFrame) -> str:
    """What the teachers' logits are on this run, from their fit on training and validation responses."""
    fit = teacher_fit.groupby("split")[["agreement", "confidence"]].mean()
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
    gap = tr["agreement"] - va["agreement"]
    units, confidence = (("rubric dimensions", "|2p - 1|") if setup.kind == "multilabel" else
                         ("scores", "(K max p - 1) / (K - 1) over a score's K classes"))
    folds = setup.settings.teacher_folds
    return (f"{who} Their logits on the training responses are in-sample (the paper's public code computes its "
            f"teacher probabilities on its training split too): on the responses they trained on they agree with "
            f"the labels on {tr['agreement']:.3f} of the {units}, on validation responses they never saw on "
            f"{va['agreement']:.3f} ({gap:+.3f}), with a mean confidence {confidence} of "
            f"{tr['confidence']:.2f} against {va['confidence']:.2f}. "
            + ("So the in-sample logits are only a little closer to the labels than held-out ones would be. "
               if gap < 0.05 else "So the in-sample logits mostly hand the labels back, softened. ")
            + "Out-of-fold logits (each response scored by its task's teacher retrained without it) would carry the "
              f"teachers' errors on unseen responses instead; they are one setting away (`moe.teacher_folds`"
              f"{', ' + str(folds) + ' on this profile, in the comparison below' if folds else ''}), "
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
    if (GUIDED, CONTINUED) in f.index:
        more = {m: f[(m, CONTINUED)] for m in (MTL, UNIMOE, GUIDED)}
        out += (f" The trained models also trained {setup.settings.encoder_epochs} epochs more than the frozen ones; "
                f"the frozen models trained on as long at the same rate, with no layer, reach "
                + "; ".join(f"{m} {more[m]:.3f}" for m in more)
                + f", so the extra epochs account for {more[GUIDED] - frozen[GUIDED]:+.3f} of UniMoE-Guided's move "
                  f"and the layer for {trained[GUIDED] - more[GUIDED]:+.3f}.")
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
    rubric = setup.kind == "multilabel"
    theirs = "the paper" if rubric else "the paper's Cohen's kappa on rubric dimensions, another quantity"
    parts = [
        f"Average {kappa_name(setup)} over the {len(setup.old)} training tasks (test split; the multi-task models: "
        f"{setup.encoder_label}): Individual {k[INDIVIDUAL]:.3f}, "
        f"MTL {k[MTL]:.3f}, UniMoE {k[UNIMOE]:.3f}, UniMoE-Guided {k[GUIDED]:.3f} ({theirs}, in that order: {pk}).",
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
                 f"{g[MTL]:.3f} and the per-task scorers' {g[INDIVIDUAL]:.3f} ({theirs}: {p5[GUIDED]:.3f}, "
                 f"{p5[MTL]:.3f}, {p5[INDIVIDUAL]:.3f}); the "
                 f"old tasks' kappa moves from {f.loc['kappa', 'before']:.3f} to {f.loc['kappa', 'after']:.3f} "
                 f"({theirs}: {pfk['before']:.3f} to {pfk['after']:.3f}).")
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


def kappa_name(setup: StudySetup) -> str:
    """What the chapter's kappa is on this run's tasks, in words."""
    return "Cohen's kappa" if setup.kind == "multilabel" else "quadratic weighted kappa"


def metrics_text(setup: StudySetup) -> str:
    """The run's metrics and how decisions are made, in words (rubric dimensions or scores)."""
    if setup.kind == "multilabel":
        return ("Cohen's kappa (the mean over a task's rubric dimensions), macro-F1, micro-F1 and per-label "
                "accuracy on each training task's test split at the paper's fixed threshold 0.5")
    return ("These tasks carry a score each, not rubric dimensions, so every model has a softmax head per task "
            "(cross-entropy, and the distillation term in its softmax form, Hinton et al.'s KL divergence at "
            "temperature τ) and decides the most probable score. The metrics are a score's: quadratic weighted "
            "kappa (in the kappa rows), macro-F1 over the score's classes and accuracy (which for one class per "
            "response is micro-F1 and per-label accuracy both), on each training task's test split. The paper's "
            "figures, all of rubric dimensions, are not the same quantities; its tables are shown for their layout "
            "and its claims are judged on their counterparts here")
