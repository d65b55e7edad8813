"""How closely each model follows the teacher on the test responses: the direct measure of "the student
mimics the teacher", which accuracy against the labels measures only at one remove.

For each set, model and seed: ``agreement``, the share of test responses where the model's predicted class
is the teacher's, and ``kl``, the mean over test responses of KL(teacher || model) in nats, the quantity
the KD loss's teacher term lowers (its cross-entropy with the teacher's probabilities, less the teacher's
own entropy). The tables average the seeds (mean and sd).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import rel_entr

from .. import verdicts
from . import student_predictions
from .claim_tests import GAIN_COLUMNS, gain_by_set
from .plan import ANN, KD_STUDENT, SMALL, STUDENT, TEACHER

if TYPE_CHECKING:
    from .fine_tuned import FineTunedTransformers
    from .students import StudentsAndANN

MODELS = (SMALL, ANN, STUDENT, KD_STUDENT)
COLUMNS = ["set", "model", "seeds", "n_test", "agreement_mean", "agreement_sd", "kl_mean", "kl_sd"]
FLOOR = 1e-7   # a model's probability below this counts as this: one confident miss must not make KL infinite


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n,) KL(p_i || q_i) in nats of (n, K) probability rows; ``q`` floored at :data:`FLOOR` and renormalised."""
    q = np.maximum(np.asarray(q, dtype=np.float64), FLOOR)
    q = q / q.sum(axis=1, keepdims=True)
    return rel_entr(np.asarray(p, dtype=np.float64), q).sum(axis=1)


def agreement_rows(teacher_proba: dict[str, np.ndarray], probabilities: dict[tuple[str, str, int], np.ndarray],
                   models=MODELS) -> pd.DataFrame:
    """One row per set, model and seed: set, model, seed, agreement, kl.

    ``teacher_proba``: {set: (n_test, K)}; ``probabilities``: {(set, model, seed): (n_test, K)}."""
    rows = []
    for (name, model, seed), q in probabilities.items():
        if model not in models:
            continue
        p = teacher_proba[name]
        if q.shape != p.shape:
            raise ValueError(f"set {name!r}, {model} seed {seed}: probabilities of shape {q.shape}, "
                             f"the teacher's are {p.shape}")
        rows.append({"set": name, "model": model, "seed": seed, "n_test": len(p),
                     "agreement": float((q.argmax(axis=1) == p.argmax(axis=1)).mean()),
                     "kl": float(kl_divergence(p, q).mean())})
    return pd.DataFrame(rows, columns=["set", "model", "seed", "n_test", "agreement", "kl"])


def agreement_table(rows: pd.DataFrame, models=MODELS) -> pd.DataFrame:
    """:func:`agreement_rows` averaged over seeds, sets in their order and models in ``models``' order."""
    g = rows.groupby(["set", "model"], sort=False)
    out = g.agg(seeds=("seed", "nunique"), n_test=("n_test", "first"), agreement_mean=("agreement", "mean"),
                agreement_sd=("agreement", "std"), kl_mean=("kl", "mean"), kl_sd=("kl", "std")).reset_index()
    sets = {s: i for i, s in enumerate(dict.fromkeys(rows["set"]))}
    order = {m: i for i, m in enumerate(models)}
    out = out.sort_values(["set", "model"], key=lambda c: c.map(sets if c.name == "set" else order), kind="stable")
    return out.reset_index(drop=True)[COLUMNS]


def agreement_gain(teacher_proba: dict[str, np.ndarray], probabilities: dict[tuple[str, str, int], np.ndarray],
                   n_resamples: int = verdicts.N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per set, whether the KD student agrees with the teacher's class more often than the lambda = 0
    student on the same test responses (:func:`~scoring_lab.kd.claim_tests.gain_by_set`, the teacher's
    classes in place of the labels: difference, 95% paired-bootstrap interval, n, p and Holm's over the sets)."""
    classes = {s: {k: q.argmax(axis=1) for k, q in probabilities.items() if k[0] == s} for s in teacher_proba}
    samples = {}
    for name, p in teacher_proba.items():
        kd = [c for (_, m, _), c in classes[name].items() if m == KD_STUDENT]
        plain = [c for (_, m, _), c in classes[name].items() if m == STUDENT]
        if kd and len(kd) == len(plain):
            samples[name] = (p.argmax(axis=1), kd, plain)
    return gain_by_set(samples, n_resamples, seed)


def agreement_text(table: pd.DataFrame, gain: pd.DataFrame | None = None) -> str:
    """One sentence: per set, the KD and the lambda = 0 student's agreement with the teacher and KL, with
    the paired difference's interval and verdict after Holm where ``gain`` (:func:`agreement_gain`) has it."""
    gains = pd.DataFrame(columns=GAIN_COLUMNS).set_index("set") if gain is None else gain.set_index("set")
    parts = []
    for name, rows in table.groupby("set", sort=False):
        by = rows.set_index("model")
        if KD_STUDENT in by.index and STUDENT in by.index:
            kd, plain = by.loc[KD_STUDENT], by.loc[STUDENT]
            part = (f"{name}: agreement {kd['agreement_mean']:.3f} against {plain['agreement_mean']:.3f}, "
                    f"KL {kd['kl_mean']:.3f} against {plain['kl_mean']:.3f}")
            if name in gains.index:
                g = gains.loc[name]
                part += (f" (agreement difference {g['effect']:+.3f}, 95% interval [{g['ci_low']:+.3f}, "
                         f"{g['ci_high']:+.3f}], {g['n']}: {g['verdict']} after Holm)")
            parts.append(part)
    if not parts:
        return ""
    return (f"With the teacher on the test responses, the KD student against the λ = 0 student (mean over seeds; "
            f"{TEACHER}'s predicted class, KL in nats): " + "; ".join(parts) + ".")


def probabilities_on_test(transformers: "FineTunedTransformers", models: "StudentsAndANN"
                       ) -> tuple[dict[str, np.ndarray], dict[tuple[str, str, int], np.ndarray]]:
    """({set: the teacher's (n_test, K) probabilities (the plan's seed)}, {(set, model, seed): (n_test, K)}
    of the small transformer, the ANN and both students), from the cached models."""
    plan = models.plan
    teacher, out = {}, {}
    for name, task in plan.sets.items():
        teacher[name] = transformers.teacher(name).predict_proba(task.test)
        for s in plan.transformer_seeds:
            if plan.has_small_transformer(name):
                out[(name, SMALL, s)] = transformers.small_transformer(name, s).predict_proba(task.test)
        for s in plan.seeds:
            out[(name, ANN, s)] = models.ann_test_proba(name, s)[0]
            out[(name, STUDENT, s)] = student_predictions.student_proba(models, name, s, 0.0)
            out[(name, KD_STUDENT, s)] = student_predictions.kd_student_proba(models, name, s)
    return teacher, out
