"""The MoE chapter's claims on constructed evidence: every statistic reaches its outcomes (held, partly,
inconclusive, not held), the bootstrap equals the framework's, and the chapter's rows carry a test and n
behind every measured verdict, by-construction figures apart, and an unreachable claim as not tested."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from scoring_lab import claims, verdicts
from scoring_lab.moe import judging, report
from scoring_lab.moe.protocol import SINGLE
from scoring_lab.moe.evidence import ADAPTED, CONTINUED_SUFFIX, FROZEN_SUFFIX, NO_REHEARSAL, Evidence
from scoring_lab.moe.judging import Judge
from scoring_lab.moe.protocol import DENSE, MTL_KD
from scoring_lab.moe.protocol import METRICS, metrics_of
from scoring_lab.paired_metrics import KAPPA, pair
from scoring_lab.profiles import load_profile

TASKS = ["t1", "t2", "t3"]


def labels(n: int = 300, L: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, L)).astype(np.int8)


def noisy(y: np.ndarray, rate: float, seed: int = 1) -> np.ndarray:
    """``y`` with a share ``rate`` of its entries flipped (seeded)."""
    flip = np.random.default_rng(seed).random(y.shape) < rate
    return np.where(flip, 1 - y, y).astype(np.int8)


def evidence(models: dict, tasks=TASKS, n: int = 300, gates: dict | None = None) -> Evidence:
    """Constructed evidence: ``models`` {name: rate of flipped labels, or a function of the truth}."""
    ys = {t: labels(n, seed=i) for i, t in enumerate(tasks)}
    preds = {m: {t: (r(ys[t]) if callable(r) else noisy(ys[t], r, seed=10 * i + j)) for i, t in enumerate(tasks)}
             for j, (m, r) in enumerate(models.items())}
    return Evidence(ys, preds, gates or {})


def judge(ev: Evidence, **kw) -> Judge:
    return Judge(ev, n_resamples=kw.pop("n_resamples", 400), seed=0, **kw)


def test_shared_draws_equal_the_frameworks_paired_bootstrap():
    ev = evidence({"A": 0.1, "B": 0.2})
    j = judge(ev)
    ours = j.paired("kappa", "A", "B", TASKS)
    theirs = pair(KAPPA, {t: (ev.labels[t], ev.preds["A"][t], ev.preds["B"][t]) for t in TASKS}, "mean")
    for x, y in zip(ours.resampled(400, 0), theirs.resampled(400, 0)):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    assert j.compare(ours) == verdicts.compare(theirs, n_resamples=400, seed=0)
    assert j.compare(ours).verdict == "held" and ours.values() == pytest.approx(theirs.values())
    # another seed or count of resamples is the framework's own draw
    np.testing.assert_allclose(ours.resampled(100, 3)[0], theirs.resampled(100, 3)[0])


def test_seeds_of_a_model_pool_their_counts_per_response():
    ev = evidence({"A": 0.1, "B": 0.3})
    y = ev.labels["t1"]
    seeded = {t: np.stack([ev.preds["A"][t], ev.preds["B"][t]]) for t in TASKS}
    j = judge(Evidence(ev.labels, {**ev.preds, "AB": seeded}, {}))
    assert j.runs("AB", "t1").shape == (2,) + y.shape and j.runs("A", "t1").shape == (1,) + y.shape
    np.testing.assert_array_equal(j.counts("kappa", "AB", "t1"), j.counts("kappa", "A", "t1") + j.counts("kappa", "B", "t1"))
    p = j.paired("micro_f1", "AB", "B", TASKS)
    assert p.seeds == (2, 1)
    # pooled: the metric of both seeds' predictions together, between the two seeds' own figures
    a, b = j.paired("micro_f1", "A", "B", TASKS).values()
    assert b < p.values()[0] < a


def test_beating_on_every_metric_reaches_held_not_held_and_inconclusive():
    ev = evidence({"good": 0.05, "bad": 0.3, "same": lambda y: y.copy(), "truth": lambda y: y.copy()})
    j = judge(ev)
    v = j.beats("good", "bad", TASKS, METRICS)
    assert v.verdict == "held" and v.held_each == (True,) * 4 and v.effect > 0.3 and v.ci_low > 0
    assert "4 of 4 held after Holm" in v.test and v.n == 900
    assert j.beats("bad", "good", TASKS, ["kappa", "macro_f1"]).verdict == "not held"
    same = j.beats("same", "truth", TASKS, ["kappa", "micro_f1"])
    assert same.verdict == "inconclusive" and same.effect == 0 and same.ci_low == same.ci_high == 0


def test_the_highest_average_is_judged_against_every_rival_and_per_task_claims_count_each_cell():
    ev = evidence({"a": 0.05, "r1": 0.3, "r2": 0.25, "twin": 0.05, "top": 0.0})
    j = judge(ev)
    v, best = j.beats_each("a", ["r1", "r2"], TASKS, ["kappa", "macro_f1"])
    assert v.verdict == "held" and best == "r2" and len(v.held_each) == 4
    partly, best = j.beats_each("a", ["r1", "twin"], TASKS, ["kappa"])   # twin: a's own noise level, other draws
    assert partly.verdict == "partly" and best == "twin" and partly.held_each == (True, False)
    assert j.beats_each("a", ["r1", "top"], TASKS, ["kappa"])[0].verdict == "not held"
    ev2 = Evidence(ev.labels, {"a": ev.preds["a"], "b": {**ev.preds["r1"], "t3": ev.preds["a"]["t3"]}}, {})
    v = judge(ev2).beats_per_task("a", "b", TASKS, ["kappa", "per_label_accuracy"])
    assert v.verdict == "partly" and v.held_each == (True, True, True, True, False, False)
    assert "4 of 6 held after Holm" in v.test


def test_matches_or_exceeds_holds_by_equivalence_or_superiority_and_fails_beyond_the_margin():
    ev = evidence({"ind": 0.1, "copy": lambda y: None, "worse": 0.35, "better": 0.0})
    ev.preds["copy"].update(ev.preds["ind"])
    j = judge(ev, margin=0.02)
    same = j.matches_or_exceeds("copy", "ind", TASKS, ["kappa", "macro_f1"])
    assert same.verdict == "held" and same.effect == 0        # identical: equivalent within any margin
    assert j.matches_or_exceeds("better", "ind", TASKS, ["kappa", "macro_f1"]).verdict == "held"
    worse = j.matches_or_exceeds("worse", "ind", TASKS, ["kappa", "macro_f1"])
    assert worse.verdict == "not held" and worse.ci_high < -0.02
    # a small sample a little below: neither within the margin for sure nor beyond it
    small = evidence({"ind": 0.1, "near": lambda y: None}, n=40)
    small.preds["near"].update({t: noisy(small.preds["ind"][t], 0.04, seed=5) for t in TASKS})
    v = judge(small, margin=0.02).matches_or_exceeds("near", "ind", TASKS, ["kappa", "macro_f1"])
    assert v.verdict == "inconclusive" and v.detectable > 0 and "Holm's correction of 4 tests" in v.test


def test_a_small_cost_needs_a_drop_shown_above_zero_and_within_the_small_drop():
    ev = evidence({"before": 0.0, "after": 0.01, "same": 0.0, "worse": 0.2, "noisy": 0.05}, n=600)
    j = judge(ev, small_drop=0.05)
    v, why = j.small_cost("before", "after", TASKS)
    assert v.verdict == "held" and 0 < v.ci_low and v.ci_high <= 0.05 and "a cost is shown" in why
    v, why = j.small_cost("before", "same", TASKS)                     # no forgetting at all: interval [0, 0]
    assert v.verdict == "inconclusive" and "no cost is shown" in why
    v, why = j.small_cost("after", "before", TASKS)                    # the old tasks gained
    assert v.verdict == "not held" and why.startswith("no forgetting")
    v, why = j.small_cost("before", "worse", TASKS)
    assert v.verdict == "not held" and "more than a little" in why
    v, why = j.small_cost("before", "noisy", TASKS)                     # a drop of about 0.1
    assert v.verdict == "not held" and v.ci_low > 0.05
    v, why = judge(chapter_evidence(), small_drop=0.05).small_cost("UniMoE-Guided", "UniMoE-Guided" + ADAPTED, TASKS)
    assert v.verdict == "inconclusive" and v.ci_low < 0.05 < v.ci_high and "reaches past 0.05" in why


def gates_of(rows: dict, n: int = 200, noise: float = 0.05, seed: int = 0) -> dict:
    """{task: (n, M) gate weights} scattered around each task's usage row, rows summing to 1."""
    rng = np.random.default_rng(seed)
    out = {}
    for t, row in rows.items():
        g = np.clip(np.asarray(row) + rng.normal(0, noise, (n, len(row))), 1e-3, None)
        out[t] = g / g.sum(1, keepdims=True)
    return out


def test_js_distance_equals_scipys():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(4), 5), rng.dirichlet(np.ones(4), 5)
    q[0] = [1, 0, 0, 0]
    np.testing.assert_allclose(judging.js_distance(p, q), [jensenshannon(a, b, base=2) for a, b in zip(p, q)])
    assert judging.mean_pairwise_js(np.stack([p[:3], q[:3]])).shape == (2,)


def test_distinct_preferences_fail_when_every_task_favours_one_expert():
    one = gates_of({"a": [0.7, 0.1, 0.1, 0.1], "b": [0.5, 0.3, 0.1, 0.1], "c": [0.6, 0.1, 0.2, 0.1]})
    v, info = judging.distinct_preferences(one, 300, 0)
    assert v.verdict == "not held" and info["distinct"] == 1 and set(info["favourites"].values()) == {1}
    assert v.p_value < 0.05          # the usage differs between tasks, yet every task prefers expert 1
    apart = gates_of({"a": [0.7, 0.1, 0.1, 0.1], "b": [0.1, 0.7, 0.1, 0.1], "c": [0.1, 0.1, 0.7, 0.1]})
    v, info = judging.distinct_preferences(apart, 300, 0)
    assert v.verdict == "held" and info["distinct"] == 3 and info["distinct_share"] == 1.0
    assert v.ci_low <= v.effect <= v.ci_high and v.effect > info["null_95"] and v.n == 600
    # favourites that differ by a hair, on few responses: resampling could make them one expert
    close = gates_of({"a": [0.26, 0.25, 0.25, 0.24], "b": [0.25, 0.26, 0.25, 0.24]}, n=30, noise=0.1)
    v, info = judging.distinct_preferences(close, 300, 0)
    assert info["distinct"] == 2 and v.verdict == "inconclusive"
    with pytest.raises(ValueError, match="two tasks"):
        judging.distinct_preferences({"a": apart["a"]})


def test_the_usage_claim_is_not_tested_where_the_settings_cannot_reach_it():
    ev = evidence({"x": 0.1})
    quoted = report.paper_figures()["usage"]
    row = report.usage_claim(judge(Evidence(ev.labels, ev.preds, {t: np.ones((5, 1)) for t in TASKS})), quoted)
    assert row.verdict == "not tested" and "not reachable here" in row.note and "caps it at 1" in row.note
    assert report.usage_claim(judge(ev), quoted).verdict == "not tested"          # no MoE block
    one = gates_of({t: [0.6, 0.2, 0.2] for t in TASKS})
    row = report.usage_claim(judge(Evidence(ev.labels, ev.preds, one)), quoted)
    assert row.verdict == "not held" and row.test and "every task favours the same expert" in row.note


def fake_setup(moe_on: str = "pooled", kind: str = "multilabel"):
    profile = load_profile("smoke")
    settings = SimpleNamespace(model=SimpleNamespace(moe_on=moe_on, n_experts=3), teacher=None, latency_repeats=20)
    return SimpleNamespace(profile=profile, old=TASKS, new=["n1", "n2"], settings=settings, timing={},
                           encoder_label="top layer trained", kind=kind, metrics=metrics_of(kind))


def chapter_evidence() -> Evidence:
    tasks = TASKS + ["n1", "n2"]
    rates = {"Individual": 0.02, "MTL": 0.3, "UniMoE": 0.2, "UniMoE-Guided": 0.1, "MTL" + ADAPTED: 0.3,
             "UniMoE-Guided" + ADAPTED: 0.12, DENSE: 0.3, MTL_KD: 0.04, "UniMoE-Guided" + ADAPTED + NO_REHEARSAL: 0.3,
             "MTL" + FROZEN_SUFFIX: 0.4, "UniMoE" + FROZEN_SUFFIX: 0.2, "UniMoE-Guided" + FROZEN_SUFFIX: 0.1,
             SINGLE: 0.2, **{m + CONTINUED_SUFFIX: r for m, r in (("MTL", 0.4), ("UniMoE", 0.2),
                                                                  ("UniMoE-Guided", 0.1))}}
    ev = evidence(rates, tasks)
    gates = gates_of({"t1": [0.7, 0.2, 0.1], "t2": [0.1, 0.8, 0.1], "t3": [0.2, 0.1, 0.7]})
    return Evidence(ev.labels, ev.preds, gates)


RESOURCES = pd.DataFrame({"model": ["UniMoE-Guided", "MTL", "Individual (3 models)"], "disk_mb": [10.0, 9.5, 29.0],
                          "latency_ms_batch1": [1.1, 1.0, 3.0]})


def test_the_chapters_claims_say_how_sure_they_are(tmp_path):
    setup = fake_setup()
    rows = report.moe_claims(setup, RESOURCES, chapter_evidence())
    table = claims.claims_table(rows)
    table.to_csv(tmp_path / "claims.csv", index=False)
    back = claims.read_claims(tmp_path / "claims.csv")                 # checked on read: columns, test and n
    assert list(back.columns) == claims.COLUMNS and len(back) == 17 and (back["paper"] == "moe").all()
    by = table.set_index("claim")
    measured = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (measured["test"].str.len() > 0).all() and (measured["n"].str.len() > 0).all()
    assert not measured["test"].str.contains("ahead on").any()          # no verdict by counting signs
    built = set(table.loc[table["basis"] == "by construction", "claim"])
    assert {c for c in built if "disk" in c or "latency" in c or "teacher" in c} == built and len(built) == 3
    latency = by.loc["The MoE block adds little latency over MTL (14 vs 13 ms per response)"]
    assert latency["note"].startswith(claims.WALL_CLOCK_NOTE) and latency["verdict"] == "held"
    assert by.loc["UniMoE (no KD) beats MTL on the average of Tasks 1-7", "verdict"] == "held"
    # the controls: the dense block errs more than UniMoE (routing held), MTL + KD less than UniMoE-Guided
    routing = [c for c in by.index if c.startswith("Routing, not capacity")][0]
    distil = [c for c in by.index if c.startswith("UniMoE-Guided's lead over MTL is more than distillation")][0]
    assert by.loc[routing, "verdict"] == "held" and by.loc[distil, "verdict"] == "not held"
    rehearsal = [c for c in by.index if c.startswith("Rehearsal limits")][0]
    assert by.loc[rehearsal, "verdict"] == "held"
    # the trained encoder: MTL gains from it, UniMoE does not (the same error rate), so freezing costs partly;
    # MTL trained one task at a time errs less than MTL: negative transfer held
    freezing = [c for c in by.index if c.startswith("Freezing the shared encoder costs")][0]
    transfer = [c for c in by.index if c.startswith("MTL suffers negative transfer")][0]
    assert by.loc[freezing, "verdict"] == "partly" and "Holm over the three" in by.loc[freezing, "note"]
    assert "the control for the extra epochs" in by.loc[freezing, "note"]
    assert by.loc[transfer, "verdict"] == "held" and "top layer trained" in by.loc[transfer, "note"]
    assert "Holm" in by.loc[routing, "test"] or "Holm" in by.loc[routing, "our_value"]
    highest = by.loc["UniMoE-Guided has the highest averages of Table 3 (above MTL, UniMoE and Individual)"]
    assert highest["verdict"] == "not held" and "Individual included" in highest["note"]   # Individual is far ahead
    assert by.loc["UniMoE-Guided matches or exceeds the per-task models (kappa, macro-F1)", "verdict"] == "not held"
    assert by.loc["Tasks rely on experts with distinct preferences (the paper's Fig. 3)", "verdict"] == "held"
    assert by.loc["Per-task models remain the upper bound on the held-out tasks", "verdict"] == "held"
    forgetting = [c for c in by.index if c.startswith("Adaptation costs")][0]
    assert by.loc[forgetting, "verdict"] == "inconclusive" and "(0, 0.05]" in by.loc[forgetting, "note"]
    assert "claims (paired bootstraps)" in setup.timing
    # token-wise experts: the latency is measured wall-clock, with what it rests on
    tokens = report.moe_claims(fake_setup("tokens"), RESOURCES, chapter_evidence())
    lat = [r for r in tokens if "latency" in r.claim][0]
    assert lat.basis == "measured" and lat.n.startswith("20 timed calls") and lat.note.startswith("wall-clock")


def test_no_verdict_is_decided_before_the_models_differ():
    """Every model predicting the same: no comparison holds or fails; only sameness can hold."""
    tasks = TASKS + ["n1", "n2"]
    same = evidence({"Individual": 0.1}, tasks)
    preds = {m: same.preds["Individual"] for m in ("Individual", "MTL", "UniMoE", "UniMoE-Guided",
                                                    "MTL" + ADAPTED, "UniMoE-Guided" + ADAPTED, DENSE, MTL_KD,
                                                    "UniMoE-Guided" + ADAPTED + NO_REHEARSAL, SINGLE,
                                                    *(m + FROZEN_SUFFIX for m in ("MTL", "UniMoE", "UniMoE-Guided")))}
    rows = report.moe_claims(fake_setup(), RESOURCES, Evidence(same.labels, preds, gates_of(
        {t: [0.5, 0.3, 0.2] for t in TASKS})))
    verdict = {r.claim: r.verdict for r in rows if r.basis == "measured"}
    sameness = "UniMoE-Guided matches or exceeds the per-task models (kappa, macro-F1)"
    assert verdict.pop(sameness) == "held"
    assert verdict.pop("Tasks rely on experts with distinct preferences (the paper's Fig. 3)") == "not held"
    assert set(verdict.values()) == {"inconclusive"}


def test_the_control_claims_are_not_tested_without_the_controls():
    ev = chapter_evidence()
    preds = {m: p for m, p in ev.preds.items() if m not in (DENSE, MTL_KD) and not m.endswith(NO_REHEARSAL)}
    rows = report.moe_claims(fake_setup(), RESOURCES, Evidence(ev.labels, preds, ev.gates))
    control = [r for r in rows if r.claim.startswith(("Routing, not capacity", "UniMoE-Guided's lead over MTL",
                                                       "Rehearsal limits"))]
    assert len(control) == 3 and {r.verdict for r in control} == {"not tested"}
    assert all("no such control" in r.note for r in control)


def test_the_encoder_claims_are_not_tested_over_a_frozen_encoder_and_reach_not_held():
    ev = chapter_evidence()
    preds = {m: p for m, p in ev.preds.items() if m != SINGLE}
    rows = report.moe_claims(fake_setup(), RESOURCES, Evidence(ev.labels, preds, ev.gates))
    enc = [r for r in rows if r.claim.startswith(("Freezing the shared encoder", "MTL suffers negative transfer"))]
    assert len(enc) == 2 and {r.verdict for r in enc} == {"not tested"} and "frozen" in enc[0].note
    # every model worse with its layer trained (the frozen ones near the truth), and MTL better than the same
    # layer trained one task at a time (every label wrong): both not held
    worse = dict(ev.preds)
    for m in ("MTL", "UniMoE", "UniMoE-Guided"):
        worse[m] = ev.preds["MTL" + FROZEN_SUFFIX]
        worse[m + FROZEN_SUFFIX] = worse[m + CONTINUED_SUFFIX] = ev.preds["Individual"]
    worse[SINGLE] = {t: (1 - y).astype(np.int8) for t, y in ev.labels.items()}
    rows = report.moe_claims(fake_setup(), RESOURCES, Evidence(ev.labels, worse, ev.gates))
    by = {r.claim.split(":")[0]: r.verdict for r in rows}
    assert by["Freezing the shared encoder costs the multi-task models"] == "not held"
    assert by["MTL suffers negative transfer"] == "not held"


@pytest.mark.parametrize("m", [1, 2, 4, 6])
def test_the_load_balancing_ceiling_is_the_terms_largest_value(m):
    import torch

    from scoring_lab.moe.layers import load_balancing_loss

    one_expert = torch.zeros(16, m)
    one_expert[:, 0] = 1.0                                      # every response routed to one expert
    spread = torch.softmax(torch.randn(16, m, generator=torch.Generator().manual_seed(0)), dim=1)
    ceiling = (m - 1) / m ** 2
    assert float(load_balancing_loss(one_expert)) == pytest.approx(ceiling)
    assert float(load_balancing_loss(spread)) <= ceiling + 1e-9
    assert report.load_balancing_ceiling(m, 0.01) == f"{0.01 * ceiling:.2g} (λ_LB 0.01 times {ceiling:.2g})"


def scores(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, n)


def off_by_one(y: np.ndarray, k: int, rate: float, seed: int) -> np.ndarray:
    """``y`` with a share ``rate`` of its scores moved one class (seeded, kept in 0..k-1)."""
    rng = np.random.default_rng(seed)
    move = rng.random(len(y)) < rate
    step = np.where(rng.random(len(y)) < 0.5, -1, 1)
    return np.where(move, np.clip(y + step, 0, k - 1), y)


def test_scored_tasks_are_judged_on_their_own_metrics_each_with_its_number_of_classes():
    """Tasks of 4 and 3 classes: kappa is quadratic weighted, macro-F1 is over each task's own classes, as
    scoring_lab.metrics computes them, and seeds stack as (S, n)."""
    from scoring_lab.metrics import multiclass_macro_f1, quadratic_weighted_kappa

    k = {"t1": 4, "t2": 3}
    ys = {t: scores(300, k[t], i) for i, t in enumerate(k)}
    preds = {"A": {t: off_by_one(ys[t], k[t], 0.1, 5 + i) for i, t in enumerate(k)},
             "B": {t: off_by_one(ys[t], k[t], 0.4, 7 + i) for i, t in enumerate(k)}}
    preds["AA"] = {t: np.stack([preds["A"][t], off_by_one(ys[t], k[t], 0.1, 9)]) for t in k}
    j = judge(Evidence(ys, preds, {}, "multiclass", k))
    qwk = j.paired("kappa", "A", "B", list(k))
    assert qwk.values()[0] == pytest.approx(np.mean([quadratic_weighted_kappa(ys[t], preds["A"][t]) for t in k]))
    f1 = j.paired("macro_f1", "A", "B", list(k))
    assert f1.values()[1] == pytest.approx(np.mean([multiclass_macro_f1(ys[t], preds["B"][t], k[t]) for t in k]))
    assert len(f1.stratum_metrics) == 2 and "QWK" in j.compare(qwk).test
    assert j.beats("A", "B", list(k), list(metrics_of("multiclass"))).verdict == "held"
    assert j.runs("AA", "t1").shape == (2, 300) and j.runs("A", "t1").shape == (1, 300)


def test_the_chapters_claims_run_on_scored_tasks_and_say_which_kappa():
    tasks, k = TASKS + ["n1", "n2"], 3
    ys = {t: scores(300, k, i) for i, t in enumerate(tasks)}
    rates = {"Individual": 0.02, "MTL": 0.3, "UniMoE": 0.2, "UniMoE-Guided": 0.1, "MTL" + ADAPTED: 0.3,
             "UniMoE-Guided" + ADAPTED: 0.12, DENSE: 0.3, MTL_KD: 0.04, "UniMoE-Guided" + ADAPTED + NO_REHEARSAL: 0.3,
             "MTL" + FROZEN_SUFFIX: 0.4, "UniMoE" + FROZEN_SUFFIX: 0.2, "UniMoE-Guided" + FROZEN_SUFFIX: 0.1,
             SINGLE: 0.2}
    preds = {m: {t: off_by_one(ys[t], k, r, 10 * i + j) for i, t in enumerate(tasks)}
             for j, (m, r) in enumerate(rates.items())}
    gates = gates_of({"t1": [0.7, 0.2, 0.1], "t2": [0.1, 0.8, 0.1], "t3": [0.2, 0.1, 0.7]})
    ev = Evidence(ys, preds, gates, "multiclass", {t: k for t in tasks})
    rows = report.moe_claims(fake_setup(kind="multiclass"), RESOURCES, ev)
    by = {r.claim: r for r in rows}
    assert len(rows) == 17
    unimoe = by["UniMoE (no KD) beats MTL on the average of Tasks 1-7"]
    assert unimoe.verdict == "held" and unimoe.our_value.startswith(("QWK", "1 of", "2 of", "3 of"))
    assert "quadratic weighted" in unimoe.note
    assert by["Per-task models remain the upper bound on the held-out tasks"].verdict == "held"
