"""The GW chapter's claims on the verdict framework: each builder, fed constructed predictions, reaches
its outcomes; storage and group sizes are by construction; identical plans are never tested."""
import math
import zlib

import numpy as np
import pytest

from scoring_lab import claims
from scoring_lab.gw import judged_claims as jc
from scoring_lab.gw.protocol import PAPER_METRICS
from scoring_lab.metrics import multilabel_report

L = 4


def _flip(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``y`` with a seeded ``share`` of its label cells flipped."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(y.shape) < share, 1 - y, y).astype(np.int8)


def _responses(n: int = 300, tasks: int = 3, **methods) -> jc.Responses:
    """Truth on ``tasks`` tasks of ``n`` responses; each method a share of flipped cells (0: the truth), seeded
    by its name and task (crc32: Python's own hash of a string changes with every process)."""
    rng = np.random.default_rng(0)
    truth = {f"t{i}": (rng.random((n, L)) < 0.4).astype(np.int8) for i in range(tasks)}
    preds = {name: {t: (y.copy() if share == 0 else _flip(y, share, seed=zlib.crc32(f"{name}/{t}".encode())))
                    for t, y in truth.items()} for name, share in methods.items()}
    return jc.Responses(truth, preds, n_resamples=500, seed=0)


def test_the_weighted_figure_is_the_papers_test_size_weighted_mean():
    r = _responses(a=0.1, b=0.2)
    r.truth["t0"] = r.truth["t0"][:100]                       # unequal test sizes
    r.preds["a"]["t0"], r.preds["b"]["t0"] = r.preds["a"]["t0"][:100], r.preds["b"]["t0"][:100]
    a, _ = r.paired("a", "b", "micro_f1").values()
    sizes = {t: len(y) for t, y in r.truth.items()}
    want = sum(multilabel_report(r.truth[t], r.preds["a"][t])["micro_f1"] * sizes[t] for t in sizes) / sum(sizes.values())
    assert a == pytest.approx(want)


@pytest.mark.parametrize("a, b, verdict, held", [("good", "bad", "held", 4), ("bad", "good", "not held", 0),
                                                 ("good", "close", "inconclusive", 0)])
def test_above_on_all_metrics_is_holm_over_paired_bootstraps(a, b, verdict, held):
    r = _responses(n=60, good=0.10, close=0.105, bad=0.35)
    row = jc.above_on_all(r, a, b, PAPER_METRICS, "a beats b", "constructed")
    assert row.verdict == verdict and row.basis == "measured"
    assert row.our_value.startswith(f"{held} of 4 after Holm")
    assert "Holm" in row.test and "paired bootstrap" in row.test and row.n == "180 responses"
    assert row.ci_low <= row.effect <= row.ci_high
    if verdict == "inconclusive":
        assert "smallest effect" in row.note


def test_identical_plans_are_not_tested_for_a_difference_or_a_sameness():
    r = _responses(a=0.1)
    r.preds["same"] = r.preds["a"]
    for row in (jc.above_on_all(r, "a", "same", PAPER_METRICS, "c", "x"), jc.beats(r, "a", "same", "micro_f1", "c", "t", "x"),
                jc.no_difference(r, "a", "same", PAPER_METRICS, 0.02, "c", "x")):
        assert row.verdict == "not tested" and "predict the same" in row.note


def test_beats_is_one_paired_bootstrap_in_the_claimed_direction():
    r = _responses(good=0.1, bad=0.3)
    row = jc.beats(r, "good", "bad", "per_label_accuracy", "good beats bad", "t = 2.64, p = 0.013", "note")
    assert row.verdict == "held" and row.paper_value == "t = 2.64, p = 0.013" and row.effect == pytest.approx(0.2, abs=0.03)
    assert jc.beats(r, "bad", "good", "micro_f1", "c", "t", "note").verdict == "not held"


def test_no_difference_needs_equivalence_on_every_metric():
    r = _responses(n=2000, a=0.10, twin=0.10, far=0.30)
    r.preds["twin"] = {t: p.copy() for t, p in r.preds["a"].items()}
    for t in r.truth:                                        # a handful of responses differ
        r.preds["twin"][t][:5] = 1 - r.preds["twin"][t][:5]
    held = jc.no_difference(r, "a", "twin", PAPER_METRICS, 0.02, "same", "constructed")
    assert held.verdict == "held" and held.our_value.startswith("equivalent on 4 of 4")
    assert "intersection-union" in held.test and "±0.02" in held.test
    far = jc.no_difference(r, "a", "far", PAPER_METRICS, 0.02, "same", "constructed")
    assert far.verdict == "not held"
    small = _responses(n=40, a=0.10, b=0.12)               # too few responses to show sameness within 0.02
    unsure = jc.no_difference(small, "a", "b", PAPER_METRICS, 0.02, "same", "constructed")
    assert unsure.verdict == "inconclusive" and "at a margin of about" in unsure.note


def test_all_equivalent_is_not_held_when_one_metric_is_shown_to_differ():
    v = {m: jc.Verdict(verdict, 0.0, -0.01, 0.01, 10, "t") for m, verdict in
         zip("abc", ("held", "not held", "inconclusive"))}
    assert jc.all_equivalent(v, 0.02).verdict == "not held"
    assert jc.all_equivalent({"a": v["a"], "c": v["c"]}, 0.02).verdict == "inconclusive"
    assert jc.all_equivalent({"a": v["a"]}, 0.02).verdict == "held"


@pytest.mark.parametrize("share, verdict", [(0.0, "held"), (0.12, "not held")])
def test_the_gap_is_judged_against_the_papers_gap(share, verdict):
    # pre-merge perfect; merged with a share s of cells flipped, prevalence 0.4: micro-F1 0.8(1-s) / (0.8(1-s) + s),
    # a gap of about 0.142 at s = 0.117, about 0.36 at s = 0.237
    r = _responses(n=1500, pre=0.0, merged=0.117 + share)
    row = jc.gap_band(r, "merged", "pre", "micro_f1", 0.142, "gap", "constructed")
    assert row.verdict == verdict and row.paper_value == "gap 0.142" and "0.192]" in row.test


def test_below_all_and_the_layer_wise_comparison():
    r = _responses(pre=0.0, merged=0.2, fitted=0.1)
    row = jc.below_all(r, "merged", "pre", PAPER_METRICS, "below", "below on 4 of 4", "x")
    assert row.verdict == "held" and row.our_value.startswith("below on 4 of 4 after Holm")
    narrow = jc.narrows_gap(r, "fitted", "merged", "pre", "micro_f1", "narrows", "x")
    assert narrow.verdict == "held" and "of the gap of" in narrow.note
    r.preds["worse"] = {t: _flip(y, 0.3, 7) for t, y in r.truth.items()}
    assert jc.narrows_gap(r, "worse", "merged", "pre", "micro_f1", "narrows", "x").verdict == "not held"
    above = jc.below_all(r, "pre", "merged", PAPER_METRICS, "below", "4 of 4", "x")   # merged above pre-merge
    assert above.verdict == "not held"
    no_gap = jc.narrows_gap(r, "fitted", "pre", "merged", "micro_f1", "narrows", "x")   # "pre" is not below
    assert no_gap.verdict == "not tested" and "no gap to narrow" in no_gap.note


def test_storage_and_group_size_follow_from_the_settings():
    row = jc.storage_claim("halves", 1.8, 5, 9, 450)
    assert row.basis == "by construction" and row.verdict == "held" and "9/5 = 1.80x" in row.note
    assert jc.storage_claim("halves", 1.5, 6, 9, 450).verdict == "partly"
    big = (("a", "b", "c", "d", "e"), ("f",), ("g",), ("h",), ("i",))
    row = jc.group_size_claim("pairs or trios", big, 9, 5, "(a, b, c, d, e)", "x")
    assert row.basis == "by construction" and row.verdict == "not held" and row.effect == 5
    assert "the largest a plan allows" in row.note
    pairs = (("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("i",))
    assert jc.group_size_claim("pairs or trios", pairs, 9, 5, "", "x").verdict == "held"
    for r in (jc.storage_claim("halves", 1.8, 5, 9, 450), jc.group_size_claim("x", big, 9, 5, "", "x")):
        assert math.isnan(r.ci_low) and r.n == "" and r.test.startswith("none")


def test_multiclass_responses_use_the_count_metrics_of_their_classes():
    rng = np.random.default_rng(1)
    truth = {"t": rng.integers(0, 3, 200)}
    r = jc.Responses(truth, {"a": {"t": truth["t"]}, "b": {"t": rng.integers(0, 3, 200)}}, "multiclass", 3, 300)
    assert r.compare("a", "b", "qwk").verdict == "held"
    assert jc.Responses(truth, {}, "multiclass", None).n_tasks == 1
    with pytest.raises(ValueError, match="shared number of classes"):
        jc.Responses(truth, {}, "multiclass", None).metric("qwk")


def test_claims_rows_from_the_builders_carry_their_test_and_n():
    r = _responses(a=0.1, b=0.2)
    rows = [jc.above_on_all(r, "a", "b", PAPER_METRICS, "c", "x"), jc.no_difference(r, "a", "b", PAPER_METRICS, 0.02, "c", "x"),
            jc.gap_band(r, "b", "a", "micro_f1", 0.142, "c", "x")]
    table = claims.claims_table(rows)
    assert list(table.columns) == claims.COLUMNS
    assert (table["test"] != "").all() and (table["n"] != "").all()


def check_chapter_claims(path) -> None:
    """What the GW chapter's claims.csv must hold, whatever the run: the new columns (checked on read),
    every measured verdict from a paired test over test responses with its n, storage and group size by
    construction, and no verdict that follows from the settings counted as measured."""
    table = claims.read_claims(path).set_index("claim")
    judged = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (judged["test"] != "").all() and (judged["n"] != "").all()
    # plan against plan: paired over test responses; the premise over task pairs with tasks resampled; the GW
    # plan among random plans by its rank, the bootstrap plans against them by Mann-Whitney
    by_pairs = judged.index.str.contains("premise")
    by_plans = judged.index.str.contains("random plans")
    assert judged[~by_pairs & ~by_plans]["n"].str.endswith("responses").all()
    assert judged[~by_pairs & ~by_plans]["test"].str.contains("paired bootstrap|equivalence").all()
    assert judged[by_pairs]["test"].str.contains("resampling the").all() and judged[by_pairs]["n"].str.contains(
        "pairs of").all()
    assert judged[by_plans]["test"].str.contains("rank test|Mann-Whitney").all()
    assert not table["test"].str.contains("t-test").any()           # the task t-test is a note, never the verdict
    assert table.loc["Merging nine models into five roughly halves the storage", "basis"] == "by construction"
    assert table.loc["The GW objective merges models in pairs or trios", "basis"] == "by construction"
    sameness = table.loc["GW-SMM and Human Knowledge do not differ significantly on any metric (Table 4)"]
    assert sameness["verdict"] == "not tested" or "equivalence within" in sameness["test"]


def test_the_chapters_claims_on_smoke(executed):
    _, results = executed
    check_chapter_claims(results / "smoke" / "gw" / "claims.csv")
