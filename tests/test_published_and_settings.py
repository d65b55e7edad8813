from pathlib import Path

import pandas as pd
import pytest

from scoring_lab import published
from scoring_lab.book.chapters import execute_all
from scoring_lab.data.synthetic import TASK_NAMES
from scoring_lab.models.per_task import compare_with_published
from scoring_lab.profiles import load_profile, settings_table


def test_published_individual_scorers_cover_the_nine_tasks():
    table, source = published.individual_scorers()
    assert sorted(table["task"]) == sorted(TASK_NAMES)
    by_task = table.set_index("task")
    assert by_task.loc["anna_vs_carla", "micro_f1"] == 0.8859
    # UniMoE Task 3 is Gas-Filled Balloons, Task 8 Carlos Javier: each task gets its own figure
    assert by_task.loc["gas_filled_balloons", "kappa"] == 0.8638 and by_task.loc["gas_filled_balloons", "number"] == 3
    assert by_task.loc["carlos_javier_atomic_model", "micro_f1"] == 0.8595
    assert by_task.loc["dry_ice_model", "micro_f1"] == 0.7196
    assert "Table 3" in source and "Table 5" in source
    means, source = published.pre_merge_weighted_mean()
    assert means == {"micro_f1": 0.8291, "macro_f1": 0.7370, "exact_match": 0.6549, "per_label_accuracy": 0.8951}
    assert "Pre-Merged" in source


def test_compare_with_published_aligns_by_task_and_leaves_unknown_tasks_blank():
    ours = pd.DataFrame({"task": ["natural_sugar", "my_task", "weighted mean"], "micro_f1": [0.8, 0.7, 0.75],
                         "macro_f1": [0.7, 0.6, 0.65], "per_label_accuracy": [0.9, 0.8, 0.85],
                         "kappa": [0.6, 0.5, 0.55]})
    table, _ = published.individual_scorers()
    c = compare_with_published(ours, table).set_index("task")
    assert list(c.index) == ["natural_sugar", "my_task"]
    # natural_sugar is the UniMoE paper's Task 7 (Table 1), whose Individual micro-F1 is 0.7469
    assert c.loc["natural_sugar", "micro_f1 (paper)"] == 0.7469 and c.loc["natural_sugar", "micro_f1"] == 0.8
    assert c.loc["natural_sugar", "paper task"] == 7
    assert pd.isna(c.loc["my_task", "micro_f1 (paper)"]) and pd.isna(c.loc["my_task", "paper task"])


def test_settings_table_puts_the_reason_beside_each_departure():
    t = settings_table(load_profile("default"), load_profile("paper")).set_index("setting")
    assert t.loc["lr", "default"] == "0.0005" and t.loc["lr", "paper"] == "2e-05"
    assert "top 2 layers" in t.loc["lr", "why"] and "validation" in t.loc["lr", "why"]
    assert t.loc["trainable_layers", "paper"] == "-"


def test_unknown_chapter_is_named():
    with pytest.raises(ValueError, match=r"unknown chapter\(s\) \['99_nope'\]"):
        execute_all(Path(__file__).resolve().parents[1] / "notebooks", "/tmp/unused", only=["99_nope"])


def test_count_in_band_ignores_the_mean_row():
    from scoring_lab.models.per_task import count_in_band

    m = pd.DataFrame({"task": ["a", "b", "c", "weighted mean"], "micro_f1": [0.74, 0.75, 0.9, 0.8]})
    assert count_in_band(m, "micro_f1", 0.75, 0.9) == 2


@pytest.mark.parametrize("paper", ["gw", "moe"])
def test_each_papers_task_numbering_matches_the_benchmarks_label_counts_and_sizes(paper):
    """Every paper's task table names the task whose label count and split sizes it lists."""
    import yaml

    from scoring_lab.data.synthetic import BENCHMARK_DIR

    table, source = published.task_numbering(paper)
    assert table["number"].tolist() == list(range(1, 10)) and sorted(table["task"]) == sorted(TASK_NAMES)
    for row in table.itertuples():
        spec = yaml.safe_load((BENCHMARK_DIR / f"{row.task}.yaml").read_text())
        assert (spec["n_labels"], spec["sizes"]["train"], spec["sizes"]["test"]) == \
            (row.n_labels, row.n_train, row.n_test), f"{paper} Task {row.number} is not {row.task}"
    shapes = {tuple(r) for r in table[["n_labels", "n_train", "n_test"]].itertuples(index=False)}
    assert len(shapes) == 9  # the shapes alone identify every task: the mapping is forced


def test_moe_numbering_puts_gas_filled_balloons_third_and_the_held_out_tasks_last():
    table = published.task_numbering("moe")[0].set_index("number")["task"]
    assert table[3] == "gas_filled_balloons"  # "in Task 3, students were asked to identify gases"
    assert (table[8], table[9]) == ("carlos_javier_atomic_model", "dry_ice_model")
    with pytest.raises(KeyError, match="no task numbering for paper 'kd'"):
        published.task_numbering("kd")
