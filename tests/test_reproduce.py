"""The determinism check: results compared cell by cell, wall-clock columns left out, and a real
chapter reproduced bit for bit from two empty caches."""
from pathlib import Path

import pandas as pd
import pytest

from scoring_lab.book.reproduce import compare_results, is_wall_clock, reproduce_check

ROOT = Path(__file__).resolve().parents[1]


def _tree(root, metrics, seconds=1.0):
    (root / "smoke" / "scorers").mkdir(parents=True)
    pd.DataFrame({"task": ["a", "b"], "micro_f1": metrics, "train_seconds": [seconds, seconds]}).to_csv(
        root / "smoke" / "scorers" / "metrics.csv", index=False)
    pd.DataFrame({"chapter": ["x"], "seconds": [seconds]}).to_csv(root / "smoke" / "timing.csv", index=False)


def test_identical_results_with_different_times_reproduce(tmp_path):
    _tree(tmp_path / "a", [0.5, 0.6], seconds=1.0)
    _tree(tmp_path / "b", [0.5, 0.6], seconds=9.0)
    differences, ignored = compare_results(tmp_path / "a", tmp_path / "b")
    assert differences == [] and ignored == ["smoke/scorers/metrics.csv:train_seconds"]


def test_a_difference_is_named_by_file_row_and_column(tmp_path):
    _tree(tmp_path / "a", [0.5, 0.6])
    _tree(tmp_path / "b", [0.5, 0.6000001])
    (tmp_path / "b" / "smoke" / "extra.csv").write_text("x\n1\n")
    differences, _ = compare_results(tmp_path / "a", tmp_path / "b")
    assert differences == [f"smoke/extra.csv: only in {tmp_path / 'b'}",
                           "smoke/scorers/metrics.csv, row 2, column 'micro_f1': '0.6' vs '0.6000001'"]


def test_compare_results_command_says_which_trees_match(tmp_path, capsys):
    from scoring_lab.cli import main
    _tree(tmp_path / "a", [0.5, 0.6], seconds=1.0)
    _tree(tmp_path / "b", [0.5, 0.6], seconds=2.0)
    _tree(tmp_path / "c", [0.5, 0.7])
    assert main(["compare-results", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "reproduced: 1 results CSVs identical" in capsys.readouterr().out
    assert main(["compare-results", str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    assert "row 2, column 'micro_f1': '0.6' vs '0.7'" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["compare-results", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 1   # nothing compared is no proof


def test_a_wall_clock_claim_may_differ_but_no_other_claim(tmp_path):
    header = "paper,claim,paper_value,our_value,verdict,basis,effect,ci_low,ci_high,n,test,note\n"
    timed = 'kd,faster,10x,{v}x,{verdict},measured,{v},{lo},{hi},200 responses,band,"wall-clock: seconds per response"\n'
    for run, v, verdict in (("a", 90, "held"), ("b", 8, "inconclusive")):
        row = timed.format(v=v, verdict=verdict, lo=v - 1, hi=v + 1)
        (tmp_path / run / "smoke" / "kd").mkdir(parents=True)
        (tmp_path / run / "smoke" / "kd" / "claims.csv").write_text(
            header + row + f"kd,smaller,4000x,{v if run == 'b' else 1}x,held,by construction,,,,,,ratio\n")
        # the claims page gathers every chapter's claims into one table: the same rule holds there
        (tmp_path / run / "smoke" / "claims").mkdir(parents=True)
        (tmp_path / run / "smoke" / "claims" / "all_claims.csv").write_text("chapter," + header + "kd," + row)
    differences, ignored = compare_results(tmp_path / "a", tmp_path / "b")
    assert differences == ["smoke/kd/claims.csv, row 2, column 'our_value': '1x' vs '8x'"]
    assert ignored == ["smoke/claims/all_claims.csv: our_value, verdict, effect and interval of 1 wall-clock claim(s)",
                       "smoke/kd/claims.csv: our_value, verdict, effect and interval of 1 wall-clock claim(s)"]


def test_wall_clock_columns():
    assert is_wall_clock("seconds_per_epoch") and is_wall_clock("train_seconds") and is_wall_clock("device")
    assert is_wall_clock("latency_ms_batch32")
    assert not is_wall_clock("micro_f1") and not is_wall_clock("epochs_run")


@pytest.mark.slow
def test_the_scorers_chapter_reproduces_from_two_empty_caches(tmp_path, capsys):
    """The same check as `make reproduce-check`, on the chapter that trains models."""
    differences = reproduce_check("smoke", only=["01_scorers"], notebooks_dir=ROOT / "notebooks", workdir=tmp_path,
                                  progress=False)
    out = capsys.readouterr().out
    assert differences == [], out
    assert "reproduced:" in out
    assert (tmp_path / "a" / "results" / "smoke" / "scorers" / "metrics.csv").is_file()
    assert (tmp_path / "a" / "cache").is_dir() and (tmp_path / "b" / "cache").is_dir()
