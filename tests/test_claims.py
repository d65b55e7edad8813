"""Claims as data: verdicts computed from values, claims.csv checked, gathered by paper."""
import pandas as pd
import pytest

from scoring_lab import claims
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
        claims.Claim("nature", "x", "1", "1", "held")


def test_close_to_formats_values_and_names_the_band():
    c = claims.close_to("gw", "micro-F1 is 0.829", 0.8271, 0.8291, "synthetic")
    assert (c.paper_value, c.our_value, c.verdict) == ("0.829", "0.827", "held")
    assert c.note == "synthetic (held within ±0.05, partly within ±0.1)"


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    claims.claims_table(rows).to_csv(path, index=False)


def test_gather_groups_by_paper_in_book_order(tmp_path):
    _write(tmp_path / "scorers" / "claims.csv", [claims.Claim("moe", "b", "1", "1", "held"),
                                                 claims.Claim("gw", "a", "1", "2", "not held")])
    _write(tmp_path / "data" / "claims.csv", [claims.Claim("gw", "c", "1", "n/a", "not tested", "why")])
    (tmp_path / "claims").mkdir()
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "claims" / "all_claims.csv", index=False)  # not a claims.csv
    table = claims.gather(tmp_path)
    assert table[["paper", "chapter", "claim"]].values.tolist() == [["gw", "data", "c"], ["gw", "scorers", "a"],
                                                                   ["moe", "scorers", "b"]]
    assert table["paper_title"].iloc[0] == claims.PAPERS["gw"]
    counts = claims.verdict_counts(table).set_index("paper")
    assert counts.loc[claims.PAPERS["gw"]].tolist() == [0, 0, 1, 1]
    assert counts.loc[claims.PAPERS["moe"]].tolist() == [1, 0, 0, 0]
    html = claims.styled_claims(table).to_html()
    assert claims.VERDICT_COLOURS["not held"] in html and "not tested" in html
    by_paper = claims.styled_by_paper(table)
    assert [title for title, _ in by_paper] == [claims.PAPERS["gw"], claims.PAPERS["moe"]]
    assert "claim b" not in by_paper[0][1].to_html() and ">b<" in by_paper[1][1].to_html()


def test_gather_of_nothing_is_an_empty_table(tmp_path):
    table = claims.gather(tmp_path)
    assert len(table) == 0 and "verdict" in table.columns and len(claims.verdict_counts(table)) == 0


def test_a_bad_claims_csv_is_named_by_file_row_and_column(tmp_path):
    p = tmp_path / "kd" / "claims.csv"
    p.parent.mkdir()
    p.write_text("paper,claim,paper_value,our_value,verdict,note\nkd,x,1,1,held,\nkd,y,1,2,sort of,\n")
    with pytest.raises(DataError, match=r"claims\.csv.*row 2.*column 'verdict'|row 2.*verdict") as e:
        claims.gather(tmp_path)
    assert e.value.row == 2 and e.value.column == "verdict" and e.value.file.endswith("claims.csv")
    p.write_text("paper,claim,verdict\nkd,x,held\n")
    with pytest.raises(DataError, match="missing column"):
        claims.read_claims(p)


@pytest.fixture(scope="module")
def full_size_tasks():
    return generate_benchmark(seed=0, scale=1.0)


def test_the_benchmark_has_each_papers_task_shapes(full_size_tasks):
    for paper in ("gw", "moe"):
        check = paper_shape_check(full_size_tasks, published.task_numbering(paper)[0])
        assert check["match"].all(), check[~check["match"]]
    verdicts = [c.verdict for c in shape_claims(full_size_tasks, scale=1.0)]
    assert verdicts == ["held", "held"]
    assert [c.verdict for c in shape_claims(full_size_tasks, scale=0.05)] == ["not tested"] * 2
    assert [c.verdict for c in shape_claims({}, scale=1.0)] == ["not tested"] * 2


def _metrics(values: dict[str, float], n_test=100):
    rows = [{"task": t, "micro_f1": v, "macro_f1": v, "exact_match": v, "per_label_accuracy": v, "kappa": v,
             "n_test": n_test} for t, v in values.items()]
    return pd.DataFrame(rows + [{"task": "weighted mean"}])


def test_pre_merge_claims_compare_with_each_papers_own_task():
    individual, _ = published.individual_scorers()
    exact = _metrics(dict(zip(individual["task"], individual["micro_f1"])))
    by_claim = {c.claim: c for c in pre_merge_claims(exact)}
    task_by_task = next(c for k, c in by_claim.items() if "task by task" in k)
    assert task_by_task.our_value == "9 of 9 within ±0.05" and task_by_task.verdict == "held"
    micro_7 = next(c for k, c in by_claim.items() if "micro-F1 0.829 over the UniMoE" in k)
    # our value is the plain mean of the paper's own per-task values, which the paper prints as 0.829
    assert micro_7.our_value == "0.840" and micro_7.verdict == "held" and "average 0.840" in micro_7.note
    worse = _metrics({t: 0.5 for t in individual["task"]})
    assert {c.verdict for c in pre_merge_claims(worse)} == {"not held"}


def test_pre_merge_claims_are_not_tested_on_other_tasks_or_multiclass_metrics():
    other = pd.DataFrame([{"task": "essay_1", "qwk": 0.7, "accuracy": 0.6, "n_test": 50}])
    assert {c.verdict for c in pre_merge_claims(other)} == {"not tested"}
    mine = _metrics({"my_task": 0.8})
    assert {c.verdict for c in pre_merge_claims(mine)} == {"not tested"}
