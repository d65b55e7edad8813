"""What the KD chapter says: the KD paper's claims, each judged from this run's tables, and the sentences
it glues into its prose (the teacher, the lambda sweep, the out-of-fold targets)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .plan import ANN, KD_STUDENT, SMALL, STUDENT, TEACHER
from ..data.task import Task
from ..profiles import Profile, teacher_settings


# ----------------------------------------------------------------------------- claims
def kd_claims(table: pd.DataFrame, tests: pd.DataFrame, measured_ratios: dict, sets: dict[str, Task]) -> list:
    """The KD paper's claims, each judged from this run's results (see :mod:`scoring_lab.claims`)."""
    from .. import claims, published

    sizes = published.kd_sizes()
    mean = table.set_index(["set", "model"])["accuracy_mean"]
    names = list(dict.fromkeys(table["set"]))
    out = []
    base = "synthetic benchmark in the roles of the paper's data sets" if all(
        "role" in t.meta for t in sets.values()) else "this source's data sets"
    for other, gain_key in ((ANN, "accuracy_gain_over_ann_claim"), (SMALL, "accuracy_gain_over_small_transformer_claim")):
        with_it = [n for n in names if (n, other) in mean.index]
        gains = [mean[(n, KD_STUDENT)] - mean[(n, other)] for n in with_it]
        avg = float(np.mean(gains))
        claim = f"The KD student is more accurate than the {other} (by about {sizes[gain_key]:.0%} on average)"
        n_ahead = sum(g > 0 for g in gains)
        left_out = [n for n in names if n not in with_it]
        out.append(claims.Claim("kd", claim, f"+{sizes[gain_key]:.3f}", f"{avg:+.3f} (ahead on {n_ahead} of "
                                f"{len(with_it)} sets)", claims.verdict_share(n_ahead, len(with_it)),
                                f"{base}; mean test accuracy over seeds, averaged over sets; held if ahead on every "
                                "set, partly if on at least half" + (f"; no {other} on {', '.join(left_out)} (see the "
                                                                     "profile)" if left_out else "")))
    p_ok = tests[(tests["baseline"].isin([ANN, SMALL])) & (tests["mean_difference"] > 0) & (tests["p"] < 0.05)]
    n_tests = int(tests["baseline"].isin([ANN, SMALL]).sum())
    out.append(claims.Claim("kd", "KD beats TinyBERT and the ANN on every data set (Table 2's asterisks)",
                            f"{2 * len(names)} of {2 * len(names)}", f"{len(p_ok)} of {n_tests} significant",
                            claims.verdict_share(len(p_ok), n_tests),
                            "KD student ahead with p < 0.05 (test per set and baseline, see the tests table)"))
    gaps = [mean[(n, TEACHER)] - mean[(n, KD_STUDENT)] for n in names]
    paper, _ = published.kd_table2()
    acc = paper[paper["metric"] == "accuracy"].pivot(index="role", columns="model", values="mean")
    paper_gap = float((acc[TEACHER] - acc[KD_STUDENT]).mean())
    out.append(claims.close_to("kd", "The KD student's accuracy is comparable to the teacher's (gap, teacher - KD)",
                               float(np.mean(gaps)), paper_gap,
                               f"{base}; mean over sets of the teacher's accuracy minus the KD student's; the "
                               "paper's value is the mean gap of its Table 2"))
    kd_vs_plain = [mean[(n, KD_STUDENT)] - mean[(n, STUDENT)] for n in names]
    n_up = sum(g > 0 for g in kd_vs_plain)
    out.append(claims.Claim("kd", "Distillation improves the student over training on labels alone (lambda = 0)",
                            "improves", f"{float(np.mean(kd_vs_plain)):+.3f} (better on {n_up} of {len(names)} sets)",
                            claims.verdict_share(n_up, len(names)),
                            "the paper's premise; its Table 2 has no lambda = 0 column; mean test accuracy over seeds"))
    ratio = measured_ratios["parameter_ratio"]
    out.append(claims.Claim("kd", "The student has about 4,000 times fewer parameters than the teacher",
                            f"{sizes['parameter_ratio_claim']:,}x", f"{ratio:,.0f}x",
                            "held" if ratio >= 0.5 * sizes["parameter_ratio_claim"] else
                            "partly" if ratio >= 0.1 * sizes["parameter_ratio_claim"] else "not held",
                            f"our teacher has {measured_ratios['teacher_parameters'] / 1e6:.1f}M parameters, the "
                            f"paper's {sizes['teacher_parameters'] / 1e6:.0f}M: the ratio shrinks by that factor; "
                            "held if at least half the paper's ratio, partly if a tenth"))
    speed = measured_ratios["speedup_b1"]
    out.append(claims.Claim("kd", "The student infers about 10 times faster than TinyBERT",
                            f"{sizes['speedup_over_small_transformer_claim']}x", f"{_order(speed)}x",
                            "held" if speed >= sizes["speedup_over_small_transformer_claim"] else
                            "partly" if speed >= 2 else "not held",
                            "wall-clock: CPU seconds per response at batch 1, one thread, against the small "
                            "transformer (lower MiniLM layers on default); shown to one significant figure; held "
                            "if at least 10x"))
    return out


def _order(x: float) -> str:
    """``x`` to one significant figure (a wall-clock ratio varies a little from run to run)."""
    if not np.isfinite(x) or x <= 0:
        return "n/a"
    return f"{float(f'{x:.1g}'):g}"


def not_applicable_claims(reason: str) -> list:
    """The paper's claims marked not tested, for a source the KD sets do not apply to (``reason``)."""
    from .. import claims

    return [claims.not_tested("kd", c, v, reason) for c, v in (
        ("The KD student is more accurate than the ANN and TinyBERT", "+0.03 / +0.02"),
        ("The student has about 4,000 times fewer parameters than the teacher", "4,000x"),
        ("The student infers about 10 times faster than TinyBERT", "10x"))]


# ----------------------------------------------------------------------------- prose
def teacher_text(profile: Profile, multilabel: bool = True) -> str:
    """One or two sentences for the chapter: what the teacher is under ``profile`` (on tasks with rubric
    dimensions, ``multilabel``, or with a multi-class score)."""
    if profile.kd.teacher_source == "per-task":
        t = profile.train
        trained = "all layers" if t.trainable_layers is None else f"its top {t.trainable_layers} layers"
        on = "rubric dimensions" if multilabel else "score"
        how = ("Its probability of each dimension gives the distribution of how many a response meets (exactly, the "
               "dimensions taken as independent given the response), and so the set's class probabilities"
               if multilabel else "Its class probabilities are the set's (classes above a set's cap added into it)")
        return (f"the per-task scorer of each of the set's tasks (chapter \"Per-task scorers\": {t.backbone}, "
                f"{trained} fine-tuned on the task's {on}). {how}; a pooled set's responses are each scored by their "
                "own task's scorer.")
    return (f"a fine-tuned {teacher_settings(profile).backbone} per set, trained on the set's classes by the same code "
            "as the per-task scorers (chapter \"Per-task scorers\") and kept in the artifact cache.")


def sweep_summary(sweep: pd.DataFrame) -> str:
    """One sentence on the lambda sweep: lambda chosen on validation, its test accuracy, the spread."""
    g = sweep.groupby("lam").agg(val=("val_accuracy", "mean"), test=("accuracy", "mean"), sd=("accuracy", "std"))
    best = float(g["val"].idxmax())
    zero = g.loc[0.0, "test"] if 0.0 in g.index else np.nan
    return (f"Chosen on validation, the best λ is {best:g} (test accuracy {g.loc[best, 'test']:.3f}); "
            f"over the whole sweep the mean test accuracy ranges from {g['test'].min():.3f} (λ = "
            f"{g['test'].idxmin():g}) to {g['test'].max():.3f} (λ = {g['test'].idxmax():g}), against "
            f"{zero:.3f} without the teacher (λ = 0); the sd over seeds is up to {g['sd'].max():.3f}.")


def out_of_fold_text(summary: pd.DataFrame) -> str:
    """Sentences on :func:`scoring_lab.kd.tables.out_of_fold_summary`: how confident and label-like each
    kind of target is, and whether the out-of-fold ones helped the KD student."""
    s = summary.set_index("targets")
    ins, oof = s.loc["in-sample"], s.loc["out-of-fold"]
    diff = oof["accuracy_mean"] - ins["accuracy_mean"]
    verdict = "helped" if diff > 0 else "did not help"
    return (f"the in-sample targets put on average {ins['target_confidence']:.2f} on their top class and agree "
            f"with the labels on {ins['target_agreement']:.0%} of the training responses; the out-of-fold targets "
            f"{oof['target_confidence']:.2f} and {oof['target_agreement']:.0%}. Out-of-fold targets {verdict}: "
            f"test accuracy {oof['accuracy_mean']:.3f} against {ins['accuracy_mean']:.3f} ({diff:+.3f}; sd over "
            f"seeds {max(oof['accuracy_sd'], ins['accuracy_sd']):.3f}).")
