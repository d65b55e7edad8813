"""What the KD chapter says: the KD paper's claims, each judged from this run's test predictions, and the sentences
it glues into its prose (the teacher, the lambda sweep, the out-of-fold targets)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import claim_tests
from .plan import ANN, KD_STUDENT, ORACLE_STUDENT, SMALL, STUDENT, TEACHER
from .. import claims, published, verdicts
from ..data.task import Task
from ..profiles import Profile, teacher_settings


# ----------------------------------------------------------------------------- claims
def kd_claims(predictions: dict, measured_ratios: dict, sets: dict[str, Task], settings,
              latencies: pd.DataFrame | None = None) -> list:
    """The KD paper's claims, each judged from this run's test predictions (see :mod:`scoring_lab.claims`).

    ``predictions``: {(set, model, seed): (n_test,) classes} (:func:`~scoring_lab.kd.results_over_seeds.predicted_test_classes`);
    ``measured_ratios``: :func:`~scoring_lab.kd.footprint.ratios`; ``settings``: the profile's ``claims``
    (resamples, seed); ``latencies``: :func:`~scoring_lab.kd.footprint.response_latencies` (no speed
    verdict without it)."""
    sizes = published.kd_sizes()
    truth = {name: task.test.scores for name, task in sets.items()}
    r, seed = settings.n_resamples, settings.seed
    base = source_text(sets)
    out, per_baseline = [], {}
    for other, gain_key in ((ANN, "accuracy_gain_over_ann_claim"), (SMALL, "accuracy_gain_over_small_transformer_claim")):
        claim = f"The KD student is more accurate than the {other} (by about {sizes[gain_key]:.0%} on average)"
        samples = claim_tests.by_set(predictions, truth, KD_STUDENT, other)
        if not samples:
            out.append(claims.not_tested("kd", claim, f"+{sizes[gain_key]:.3f}", f"no {other} was trained (see the profile)"))
            continue
        parts, overall = claim_tests.beats(samples, r, seed)
        per_baseline[other] = parts
        each = verdicts.compare_all(list(parts.values()), overall)
        left_out = [n for n in sets if n not in samples]
        out.append(claims.judged("kd", claim, f"+{sizes[gain_key]:.3f}", overall, "; ".join(x for x in (
            base, "a claim about the average: accuracy averaged over sets, one paired bootstrap resampling each "
            "set's test responses, seeds pooled per response; held if its interval lies above zero; set by set "
            f"(Holm over {len(parts)})", claim_tests.which_held(parts, each.held_each, each.against_each),
            f"no {other} on {', '.join(left_out)} (see the profile)" if left_out else "") if x)))
    out.append(_every_set(per_baseline, len(sets)))
    out.append(_teacher_gap(predictions, truth, base, r, seed))
    parts, overall = claim_tests.beats(claim_tests.by_set(predictions, truth, KD_STUDENT, STUDENT), r, seed)
    each = verdicts.compare_all(list(parts.values()), overall)
    out.append(claims.judged("kd", "Distillation improves the student over training on labels alone (lambda = 0)",
                             "improves", overall, "the paper's premise (its Table 2 has no lambda = 0 column); the same "
                             "student with and without the teacher, same seeds, accuracy averaged over sets, each set's "
                             "test responses paired; held if the interval lies above zero; set by set (Holm over "
                             f"{len(parts)}): " + claim_tests.which_held(parts, each.held_each, each.against_each)))
    out.append(_positive_control(predictions, truth, base, r, seed))
    out.append(_parameter_ratio(measured_ratios, sizes))
    out.append(_speedup(latencies, sizes, r, seed))
    return out


CONTROL_CLAIM = ("Positive control: distilling the generator's own probabilities lifts the student over training on "
                 "labels alone")


def _positive_control(predictions: dict, truth: dict, base: str, r: int, seed: int) -> claims.Claim:
    """The student distilled from the generator's probabilities (:mod:`~scoring_lab.kd.oracle`) against the
    lambda = 0 student: whether the pipeline can move a student when the targets hold what the labels lack."""
    samples = claim_tests.by_set(predictions, truth, ORACLE_STUDENT, STUDENT)
    if not samples:
        return claims.not_tested("kd", CONTROL_CLAIM, "lifts", "this source has no generator probabilities (only the "
                                 "generated benchmark keeps them), so there is no positive control")
    parts, overall = claim_tests.beats(samples, r, seed)
    each = verdicts.compare_all(list(parts.values()), overall)
    return claims.judged("kd", CONTROL_CLAIM, "lifts", overall, f"{base}; this project's control, not the paper's "
                         "claim: the same student, seeds and chosen lambda and tau as the KD student, its targets the "
                         "benchmark generator's class probabilities given each response's making (before rater noise) "
                         "instead of the teacher's; accuracy averaged over sets, paired per set, seeds pooled; set by "
                         f"set (Holm over {len(parts)}): " + claim_tests.which_held(parts, each.held_each, each.against_each))


def source_text(sets: dict) -> str:
    """Where the sets' responses come from, for the claims' notes: named by the source the sets were built
    from (their ``meta["data_source"]``, :func:`scoring_lab.kd.sets.data_source`), never by their roles,
    which every source's sets have."""
    found = {t.meta.get("data_source") for t in sets.values()}
    source = found.pop() if len(found) == 1 else None
    roles = " in the roles of the paper's data sets" if all("role" in t.meta for t in sets.values()) else ""
    if source == "synthetic":
        return f"the project's synthetic benchmark{roles}"
    if source is None:
        return f"this run's data sets{roles} (not the paper's data)"
    return f"{source} data{roles} (this run's source, not the paper's data)"


def _every_set(per_baseline: dict, n_sets: int) -> claims.Claim:
    """Table 2's asterisks: every set's comparison with each baseline, corrected together (Holm)."""
    claim = "KD beats TinyBERT and the ANN on every data set (Table 2's asterisks)"
    parts = {f"{name} vs {other}": v for other, by in per_baseline.items() for name, v in by.items()}
    if not parts:
        return claims.not_tested("kd", claim, f"{2 * n_sets} of {2 * n_sets}", "no baseline was trained")
    v = claim_tests.every_set(parts)
    return claims.judged("kd", claim, f"{2 * n_sets} of {2 * n_sets}", v,
                         "the per-set paired bootstraps of the two claims above, all corrected together; the effect is "
                         "their mean accuracy difference; " + claim_tests.which_held(parts, v.held_each, v.against_each),
                         our_value=f"{sum(v.held_each)} of {len(parts)} held after correction"
                         + (f", {sum(v.against_each)} significantly the other way" if any(v.against_each) else ""))


def _teacher_gap(predictions: dict, truth: dict, base: str, r: int, seed: int) -> claims.Claim:
    """The teacher's lead over the KD student, at most the paper's mean gap (one-sided)."""
    paper_gap = _paper_gap()
    claim = "The KD student's accuracy is comparable to the teacher's (gap, teacher - KD, at most the paper's)"
    v = claim_tests.gap_at_most(claim_tests.by_set(predictions, truth, TEACHER, KD_STUDENT), paper_gap, r, seed)
    below = ("; the gap is at or below 0: the student is at least as accurate as its teacher here, which says more "
             "about a weak teacher than a strong student" if v.effect <= 0 else "")
    return claims.judged("kd", claim, f"{paper_gap:.3f}", v,
                         f"{base}; accuracy averaged over sets, paired per set, seeds pooled; the paper's value is the "
                         "mean gap of its Table 2; held if the whole interval lies at or below it, not held if the whole "
                         "interval lies above" + below)


def _paper_gap() -> float:
    """The paper's teacher accuracy minus its KD student's, averaged over its Table 2's data sets."""
    paper, _ = published.kd_table2()
    acc = paper[paper["metric"] == "accuracy"].pivot(index="role", columns="model", values="mean")
    return float((acc[TEACHER] - acc[KD_STUDENT]).mean())


def _parameter_ratio(measured_ratios: dict, sizes: dict) -> claims.Claim:
    """The teacher's parameters over the student's: follows from the two architectures."""
    ratio, paper = measured_ratios["parameter_ratio"], sizes["parameter_ratio_claim"]
    verdict = "held" if ratio >= 0.5 * paper else "partly" if ratio >= 0.1 * paper else "not held"
    return claims.by_construction(
        "kd", "The student has about 4,000 times fewer parameters than the teacher", f"{paper:,}x", f"{ratio:,.0f}x",
        verdict, f"follows from the two architectures, not from training: our teacher has "
        f"{measured_ratios['teacher_parameters'] / 1e6:.1f}M parameters, the paper's {sizes['teacher_parameters'] / 1e6:.0f}M, "
        "and the ratio shrinks by that factor; held if at least half the paper's ratio, partly if a tenth",
        effect=float(ratio), test="parameter counts of the two models (band: held >= 1/2, partly >= 1/10 of the paper's)")


def _speedup(latencies: pd.DataFrame | None, sizes: dict, r: int, seed: int) -> claims.Claim:
    """The student's speed-up over the small transformer, wall-clock, per response at batch 1."""
    claim, paper = "The student infers about 10 times faster than TinyBERT", sizes["speedup_over_small_transformer_claim"]
    if latencies is None or len(latencies) < 2:
        return claims.not_tested("kd", claim, f"{paper}x", f"{claims.WALL_CLOCK_NOTE}: no responses were timed")
    v = claim_tests.speedup_band(latencies["small_seconds"], latencies["student_seconds"], paper, r, seed)
    return claims.judged(
        "kd", claim, f"{paper}x", v, f"{claims.WALL_CLOCK_NOTE}: seconds per response at batch 1, the two models timed "
        "in turn on the same test responses; measured, but it depends on this machine's CPU, one thread, the "
        "tokenization in each model's call and the small transformer's size (the lower MiniLM layers on default, "
        f"not the paper's 67M TinyBERT); held if the whole interval is at least {paper:g}x",
        our_value=f"{_order(v.effect)}x [{_order(v.ci_low)}, {_order(v.ci_high)}]")


def _order(x: float) -> str:
    """``x`` to two significant figures (a wall-clock ratio varies from run to run)."""
    if not np.isfinite(x) or x <= 0:
        return "n/a"
    return f"{float(f'{x:.2g}'):g}"


def not_applicable_claims(reason: str) -> list:
    """The paper's claims marked not tested, for a source the KD sets do not apply to (``reason``)."""
    sizes = published.kd_sizes()
    measured = [claims.not_tested("kd", c, v, reason) for c, v in (
        ("The KD student is more accurate than the ANN (by about 3% on average)", "+0.030"),
        ("The KD student is more accurate than the small transformer (by about 2% on average)", "+0.020"),
        ("KD beats TinyBERT and the ANN on every data set (Table 2's asterisks)", "8 of 8"),
        ("The KD student's accuracy is comparable to the teacher's (gap, teacher - KD, at most the paper's)", f"{_paper_gap():.3f}"),
        ("Distillation improves the student over training on labels alone (lambda = 0)", "improves"),
        (CONTROL_CLAIM, "lifts"),
        ("The student infers about 10 times faster than TinyBERT", f"{sizes['speedup_over_small_transformer_claim']}x"))]
    built = claims.not_tested("kd", "The student has about 4,000 times fewer parameters than the teacher",
                              f"{sizes['parameter_ratio_claim']:,}x", reason, basis=verdicts.BY_CONSTRUCTION)
    return [*measured[:6], built, measured[6]]


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


def sweep_summary(sweep: pd.DataFrame, choice: pd.DataFrame) -> str:
    """Sentences on the lambda and temperature sweep (:func:`~scoring_lab.kd.results_over_seeds.lambda_sweep`)
    and the choice made on validation (:func:`~scoring_lab.kd.distillation_choice.choose`)."""
    teacher = sweep[sweep["targets"] == "in-sample"]
    g = teacher.groupby(["lam", "temperature"]).agg(val=("val_accuracy", "mean"), test=("accuracy", "mean"),
                                                     sd=("accuracy", "std"))
    zero = g.loc[(0.0, 1.0), "test"] if (0.0, 1.0) in g.index else np.nan
    candidates = g.drop(index=(0.0, 1.0), errors="ignore")
    pick = choice[choice["chosen"]].iloc[0]
    lam, tau = float(pick["lam"]), float(pick["temperature"])
    text = (f"Chosen on validation: λ = {lam:g} at τ = {tau:g} (mean validation accuracy {pick['val_accuracy_mean']:.3f}; "
            f"the {len(candidates)} candidates span {candidates['val'].min():.3f}-{candidates['val'].max():.3f} on "
            f"validation), test accuracy {g.loc[(lam, tau), 'test']:.3f}. Over the candidates the mean test accuracy "
            f"runs from {candidates['test'].min():.3f} to {candidates['test'].max():.3f}, against {zero:.3f} without "
            f"the teacher (λ = 0); the sd over seeds is up to {g['sd'].max():.3f}.")
    oracle = sweep[sweep["targets"] == "oracle"]
    if len(oracle):
        o = oracle.groupby("lam")["accuracy"].mean()
        text += (f" The generator's targets (the positive control, τ = {tau:g}) give {o.min():.3f} to {o.max():.3f}, "
                 f"highest at λ = {o.idxmax():g}.")
    return text


NO_OUT_OF_FOLD = ("This profile runs no out-of-fold comparison (`kd.oof_sets: none`): each fold teacher is a "
                  "fine-tune, one per fold for a single-item set and one per member task and fold for a pooled set, "
                  "more than the profile's CPU budget holds (its note gives the measured cost). The `paper` profile "
                  "runs it on every set; a profile naming one set (`kd.oof_sets: first`) runs it there.")


def out_of_fold_text(summary: pd.DataFrame | None, gain: pd.DataFrame | None) -> str:
    """Sentences on :func:`scoring_lab.kd.tables.out_of_fold_summary`, per set: how confident and label-like
    each kind of target is, and whether the out-of-fold ones helped the KD student (``gain``: the paired
    test, :func:`~scoring_lab.kd.claim_tests.gain_by_set` of out-of-fold against in-sample, Holm over sets);
    :data:`NO_OUT_OF_FOLD` where the profile runs no comparison (``summary`` None or empty)."""
    if summary is None or summary.empty:
        return NO_OUT_OF_FOLD
    gains = gain.set_index("set")
    parts = []
    for name, rows in summary.groupby("set", sort=False):
        s = rows.set_index("targets")
        ins, oof = s.loc["in-sample"], s.loc["out-of-fold"]
        g = gains.loc[name]
        parts.append(
            f"on {name} the in-sample targets put on average {ins['target_confidence']:.2f} on their top class and "
            f"agree with the labels on {ins['target_agreement']:.0%} of the training responses, the out-of-fold "
            f"targets {oof['target_confidence']:.2f} and {oof['target_agreement']:.0%}; KD student test accuracy "
            f"{oof['accuracy_mean']:.3f} with out-of-fold targets against {ins['accuracy_mean']:.3f} with in-sample "
            f"ones, a paired difference of {g['effect']:+.3f} (95% interval [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}], "
            f"{g['n']}): {g['verdict']} that out-of-fold targets help")
    return "; ".join(parts)[:1].upper() + "; ".join(parts)[1:] + "." if parts else ""


def control_text(gain: pd.DataFrame) -> str:
    """One sentence on the positive control per set (:func:`~scoring_lab.kd.claim_tests.gain_by_set` of the
    generator's student against the lambda = 0 one)."""
    if gain.empty:
        return ("This source has no generator probabilities (only a generated benchmark keeps them), so there is "
                "no positive control here.")
    parts = [f"{r['set']} {r['effect']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] ({r['verdict']})"
             for _, r in gain.iterrows()]
    return ("The student distilled from the generator's probabilities against the λ = 0 student, test accuracy, "
            "paired over the same test responses, Holm over the sets: " + "; ".join(parts) + ".")


def vocab_choice_text(choice: pd.DataFrame) -> str:
    """One sentence on :func:`scoring_lab.kd.vocab_choice.choose`'s table: the threshold chosen per set and
    by how much it beat keeping every training word on validation."""
    parts = []
    for name, rows in choice.groupby("set", sort=False):
        rows = rows.set_index("min_count")
        m = int(rows.index[rows["chosen"].astype(bool)][0])
        gain = (f", {rows.loc[m, 'val_accuracy_mean'] - rows.loc[1, 'val_accuracy_mean']:+.3f} in mean validation "
                "accuracy over keeping every word" if m != 1 and 1 in rows.index else "")
        parts.append(f"{m} on {name} ({int(rows.loc[m, 'vocab_size']):,} rows{gain})")
    return "The threshold chosen on validation is " + "; ".join(parts) + "."


def unknown_words_text(table: pd.DataFrame) -> str:
    """Sentences on :func:`scoring_lab.kd.unknown_words.accuracy_by_unknown_words`: over all sets, the share
    of test responses with a word unseen in training and each model's accuracy with and without."""
    from .unknown_words import every_training_word, pooled

    teacher, kd, plain = (pooled(table, m) for m in (TEACHER, KD_STUDENT, STUDENT))
    if not kd:
        return ""
    out = (f"Over the sets, {kd['share_unknown']:.0%} of the test responses hold a word no training response of their set "
           f"has. On those the KD student's accuracy is {kd['unknown']:.3f}, on the rest "
           f"{kd['known']:.3f}")
    if teacher:
        out += f"; the teacher's {teacher['unknown']:.3f} and {teacher['known']:.3f}"
    out += f"; the λ = 0 student's {plain['unknown']:.3f} and {plain['known']:.3f}."
    label = every_training_word(1)
    before = pooled(table, label)
    if before:
        changed = table.loc[table["model"] == label, "set"]
        after = pooled(table[table["set"].isin(changed)], STUDENT)
        out += (f" On the sets where a threshold above 1 was chosen ({', '.join(changed)}), the λ = 0 student "
                f"scores {after['unknown']:.3f} and {after['known']:.3f} with it, against {before['unknown']:.3f} "
                f"and {before['known']:.3f} keeping every training word (min_count = 1).")
    return out
