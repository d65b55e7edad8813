"""Claims as data: verdicts computed from values, claims.csv checked, gathered by paper."""
import pandas as pd
import pytest

from scoring_lab import claims
from scoring_lab import verdicts as V
from scoring_lab.data import DataError
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.data.summary import paper_shape_check, shape_claims
from scoring_lab.models.per_task import pre_merge_claims
from scoring_lab import published


@pytest.mark.parametrize("ours, verdict", [(0.80, "held"), (0.85, "held"), (0.75, "held"), (0.74, "partly"),
                                           (0.70, "partly"), (0.69, "not held"), (0.95, "not held"),
                                           (None, "not tested"), (float("nan"), "not tested")])
def test_verdict_close_uses_the_stated_bands(ours, verdict):
    assert claims.verdict_close(ours, 0.80) == verdict


@pytest.mark.parametrize("n_ok, n, verdict", [(9, 9, "held"), (5, 9, "partly"), (4, 9, "not held"),
                                              (0, 0, "not tested")])
def test_verdict_share(n_ok, n, verdict):
    assert claims.verdict_share(n_ok, n) == verdict


def test_a_claim_with_a_typed_verdict_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="verdict 'mostly'"):
        claims.Claim("gw", "x", "1", "1", "mostly")
    with pytest.raises(ValueError, match="paper 'nature'"):
        claims.Claim("nature", "x", "1", "1", "held", n="1", test="t")
    with pytest.raises(ValueError, match="basis 'hunch'"):
        claims.Claim("gw", "x", "1", "1", "held", basis="hunch", n="1", test="t")


def test_a_measured_verdict_needs_the_test_it_came_from():
    with pytest.raises(ValueError, match="no test or n"):
        claims.Claim("gw", "x", "1", "1", "held")
    assert claims.Claim("gw", "x", "1", "n/a", "not tested").basis == "measured"


def test_close_to_is_a_by_construction_figure_with_its_band():
    c = claims.close_to("gw", "micro-F1 is 0.829", 0.8271, 0.8291, "synthetic")
    assert (c.paper_value, c.our_value, c.verdict, c.basis) == ("0.829", "0.827", "held", "by construction")
    assert c.note == "synthetic (held within ±0.05, partly within ±0.1)" and c.effect == pytest.approx(0.8271)


@pytest.mark.parametrize("verdict, detectable, in_note", [("held", None, False), ("inconclusive", 0.031, True)])
def test_judged_carries_the_verdicts_numbers(verdict, detectable, in_note):
    v = V.Verdict(verdict, 0.012, -0.004, 0.027, 812, "paired bootstrap", 0.2, detectable, "812 responses, 3 seeds")
    c = claims.judged("kd", "KD helps", "improves", v, "mean over seeds")
    assert (c.verdict, c.effect, c.ci_low, c.ci_high, c.n, c.test) == (verdict, 0.012, -0.004, 0.027,
                                                                        "812 responses, 3 seeds", "paired bootstrap")
    assert c.our_value == "+0.012 [-0.004, +0.027]" and c.note.startswith("mean over seeds")
    assert ("smallest effect these responses could detect (80% power) is about ±0.031" in c.note) == in_note


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    claims.claims_table(rows).to_csv(path, index=False)


def _measured(paper, claim, verdict):
    return claims.Claim(paper, claim, "1", "1", verdict, n="10 responses", test="t", effect=0.1, ci_low=0.0,
                        ci_high=0.2)


def test_gather_groups_by_paper_in_book_order_and_counts_by_construction_apart(tmp_path):
    _write(tmp_path / "scorers" / "claims.csv", [_measured("moe", "b", "held"), _measured("gw", "a", "not held"),
                                                 claims.close_to("gw", "d", 0.8, 0.8)])
    _write(tmp_path / "data" / "claims.csv", [claims.Claim("gw", "c", "1", "n/a", "not tested", "why")])
    (tmp_path / "claims").mkdir()
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "claims" / "all_claims.csv", index=False)  # not a claims.csv
    table = claims.gather(tmp_path)
    assert table[["paper", "chapter", "claim"]].values.tolist() == [["gw", "data", "c"], ["gw", "scorers", "a"],
                                                                   ["gw", "scorers", "d"], ["moe", "scorers", "b"]]
    assert table["paper_title"].iloc[0] == claims.PAPERS["gw"]
    counts = claims.verdict_counts(table).set_index("paper")
    assert list(counts.columns) == [*claims.VERDICTS, "by construction"]
    assert counts.loc[claims.PAPERS["gw"]].tolist() == [0, 0, 0, 1, 1, 1]     # the held 'd' counted apart
    assert counts.loc[claims.PAPERS["moe"]].tolist() == [1, 0, 0, 0, 0, 0]
    html = claims.styled_claims(table).to_html()
    assert claims.VERDICT_COLOURS["not held"] in html and "not tested" in html and "[+0.000, +0.200]" in html
    by_paper = claims.styled_by_paper(table)
    assert [title for title, _ in by_paper] == [claims.PAPERS["gw"], claims.PAPERS["moe"]]
    assert "claim b" not in by_paper[0][1].to_html() and ">b<" in by_paper[1][1].to_html()


def test_gather_of_nothing_is_an_empty_table(tmp_path):
    table = claims.gather(tmp_path)
    assert len(table) == 0 and "verdict" in table.columns and len(claims.verdict_counts(table)) == 0


HEADER = ",".join(claims.COLUMNS)


@pytest.mark.parametrize("row, column, message", [
    ("kd,y,1,2,sort of,measured,,,,,,", "verdict", "verdict 'sort of'"),
    ("kd,y,1,2,held,guessed,,,,1,t,", "basis", "basis 'guessed'"),
    ("kd,y,1,2,held,measured,big,,,1,t,", "effect", "effect 'big' is not a number"),
    ("kd,y,1,2,held,measured,0.1,0.3,0.2,1,t,", "ci_low", "runs backwards"),
    ("kd,y,1,2,held,measured,0.1,0.0,0.2,,t,", "n", "needs its n"),
    ("kd,y,1,2,inconclusive,measured,0.1,0.0,0.2,5 responses,,", "test", "needs its test"),
])
def test_a_bad_claims_csv_is_named_by_file_row_and_column(tmp_path, row, column, message):
    p = tmp_path / "kd" / "claims.csv"
    p.parent.mkdir()
    p.write_text(f"{HEADER}\nkd,x,1,1,held,by construction,,,,,,\n{row}\n")
    with pytest.raises(DataError, match=message) as e:
        claims.gather(tmp_path)
    assert e.value.row == 2 and e.value.column == column and e.value.file.endswith("claims.csv")


def test_a_claims_csv_without_the_new_columns_is_refused(tmp_path):
    p = tmp_path / "claims.csv"
    p.write_text("paper,claim,paper_value,our_value,verdict,note\nkd,x,1,1,held,\n")
    with pytest.raises(DataError, match="missing column.*basis"):
        claims.read_claims(p)


@pytest.fixture(scope="module")
def full_size_tasks():
    return generate_benchmark(seed=0, scale=1.0)


def test_the_benchmark_has_each_papers_task_shapes_by_construction(full_size_tasks):
    for paper in ("gw", "moe"):
        check = paper_shape_check(full_size_tasks, published.task_numbering(paper)[0])
        assert check["match"].all(), check[~check["match"]]
    made = shape_claims(full_size_tasks, scale=1.0)
    assert [(c.verdict, c.basis) for c in made] == [("held", "by construction")] * 2
    assert [c.verdict for c in shape_claims(full_size_tasks, scale=0.05)] == ["not tested"] * 2
    assert [c.verdict for c in shape_claims({}, scale=1.0)] == ["not tested"] * 2


def test_real_tasks_shapes_are_a_measured_check_of_fact(full_size_tasks):
    import dataclasses
    real = {k: dataclasses.replace(t, meta={}) for k, t in full_size_tasks.items()}
    made = shape_claims(real, scale=1.0)
    assert [(c.verdict, c.basis, c.n) for c in made] == [("held", "measured", "9 tasks")] * 2


def _metrics(values: dict[str, float], n_test=100):
    rows = [{"task": t, "micro_f1": v, "macro_f1": v, "exact_match": v, "per_label_accuracy": v, "kappa": v,
             "n_test": n_test} for t, v in values.items()]
    return pd.DataFrame(rows + [{"task": "weighted mean"}])


def test_pre_merge_claims_on_the_synthetic_benchmark_are_its_calibration():
    individual, _ = published.individual_scorers()
    exact = _metrics(dict(zip(individual["task"], individual["micro_f1"])))
    by_claim = {c.claim: c for c in pre_merge_claims(exact)}
    assert {c.basis for c in by_claim.values()} == {"by construction"}
    task_by_task = next(c for k, c in by_claim.items() if "task by task" in k)
    assert task_by_task.our_value == "9 of 9 within ±0.05" and task_by_task.verdict == "held"
    micro_7 = next(c for k, c in by_claim.items() if "micro-F1 0.829 over the UniMoE" in k)
    # our value is the plain mean of the paper's own per-task values, which the paper prints as 0.829
    assert micro_7.our_value == "0.840" and micro_7.verdict == "held" and "average 0.840" in micro_7.note
    assert "calibration, not a finding" in micro_7.note
    worse = _metrics({t: 0.5 for t in individual["task"]})
    assert {c.verdict for c in pre_merge_claims(worse)} == {"not held"}


class _Fixed:
    """A scorer whose test predictions are given."""

    def __init__(self, pred):
        self.pred = pred

    def predict(self, split):
        return self.pred


@pytest.mark.parametrize("flip, expected", [(0.0, "not held"), (0.12, "inconclusive"), (0.15, "held"), (0.5, "not held")])
def test_pre_merge_claims_on_real_tasks_are_measured_on_intervals(full_size_tasks, flip, expected):
    import dataclasses
    import numpy as np
    rng = np.random.default_rng(0)
    real = {k: dataclasses.replace(t, meta={}) for k, t in full_size_tasks.items()}
    scorers = {}
    for k, t in real.items():
        y = t.test.labels
        scorers[k] = _Fixed(np.where(rng.random(y.shape) < flip, 1 - y, y))
    metrics_table = _metrics({k: 0.8 for k in real})
    made = pre_merge_claims(metrics_table, scorers, real, n_resamples=300)
    micro = next(c for c in made if "weighted-mean micro-F1" in c.claim)
    assert micro.basis == "measured" and "bootstrap" in micro.test and micro.ci_low <= micro.effect <= micro.ci_high
    assert micro.verdict == expected, micro
    task_by_task = next(c for c in made if "task by task" in c.claim)
    assert task_by_task.basis == "measured" and task_by_task.verdict in ("held", "inconclusive", "not held")
    if flip == 0.0:
        assert task_by_task.verdict == "not held"   # perfect scores lie wholly above every task's band


def test_pre_merge_claims_are_not_tested_on_other_tasks_or_multiclass_metrics():
    other = pd.DataFrame([{"task": "essay_1", "qwk": 0.7, "accuracy": 0.6, "n_test": 50}])
    assert {c.verdict for c in pre_merge_claims(other)} == {"not tested"}
    mine = _metrics({"my_task": 0.8})
    assert {c.verdict for c in pre_merge_claims(mine)} == {"not tested"}
