from pathlib import Path

import pandas as pd
import pytest

from scoring_lab import published
from scoring_lab.chapters import execute_all
from scoring_lab.data.synthetic import TASK_NAMES
from scoring_lab.per_task import compare_with_published
from scoring_lab.profiles import load_profile, settings_table


def test_published_individual_scorers_cover_the_nine_tasks():
    table, source = published.individual_scorers()
    assert table["task"].tolist() == list(TASK_NAMES)
    assert table.set_index("task").loc["anna_vs_carla", "micro_f1"] == 0.8859
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
    assert c.loc["natural_sugar", "micro_f1 (paper)"] == 0.7196 and c.loc["natural_sugar", "micro_f1"] == 0.8
    assert pd.isna(c.loc["my_task", "micro_f1 (paper)"])


def test_settings_table_puts_the_reason_beside_each_departure():
    t = settings_table(load_profile("default"), load_profile("paper")).set_index("setting")
    assert t.loc["lr", "default"] == "0.0002" and t.loc["lr", "paper"] == "2e-05"
    assert "top layers" in t.loc["lr", "why"]
    assert t.loc["trainable_layers", "paper"] == "-"


def test_unknown_chapter_is_named():
    with pytest.raises(ValueError, match=r"unknown chapter\(s\) \['99_nope'\]"):
        execute_all(Path(__file__).resolve().parents[1] / "notebooks", "/tmp/unused", only=["99_nope"])


def test_count_in_band_ignores_the_mean_row():
    from scoring_lab.per_task import count_in_band

    m = pd.DataFrame({"task": ["a", "b", "c", "weighted mean"], "micro_f1": [0.74, 0.75, 0.9, 0.8]})
    assert count_in_band(m, "micro_f1", 0.75, 0.9) == 2
