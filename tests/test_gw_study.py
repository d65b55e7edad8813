"""The GW chapter's study helpers: paired tests, what a published t and p imply, layer-wise coefficients."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scoring_lab.merging import adamerging
from scoring_lab.gw import significance
from scoring_lab.models import per_task
from scoring_lab import published
from scoring_lab.models.backbone import TINY_RANDOM
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.merging.evaluation import Merge, MergeEvaluator
from scoring_lab.profiles import TrainSettings


def test_paired_tests_are_scipys_and_defined_when_nothing_differs():
    a, b = np.array([0.8, 0.7, 0.9, 0.6]), np.array([0.7, 0.7, 0.85, 0.5])
    r = significance.paired_tests(a, b)
    assert r["t"] == pytest.approx(stats.ttest_rel(a, b).statistic)
    assert r["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert r["n"] == 4 and r["mean_difference"] == pytest.approx(0.0625)
    same = significance.paired_tests(a, a)
    assert np.isnan(same["t"]) and np.isnan(same["p"]) and np.isnan(same["wilcoxon_p"])


def test_ttests_pair_tasks_and_task_labels_of_the_methods_present():
    performance = pd.DataFrame({"method": ["GW-SMM"] * 3 + ["Pre-Merged"] * 3, "task": ["a", "b", "c"] * 2,
                                "qwk": [0.5, 0.6, 0.7, 0.6, 0.6, 0.9]})
    labels = pd.DataFrame({"method": ["GW-SMM", "GW-SMM", "Pre-Merged", "Pre-Merged"], "task": ["a", "b"] * 2,
                           "label": ["x", "x", "x", "x"], "f1": [0.4, 0.5, 0.5, 0.7],
                           "accuracy": [0.8, 0.9, 0.9, 0.8]})
    t = significance.ttests(performance, labels, ["qwk"])
    assert list(t["metric"]) == ["qwk", "label_f1", "label_accuracy"]   # only GW-SMM vs Pre-Merged is present
    assert set(t["method_a"]) == {"GW-SMM"} and set(t["method_b"]) == {"Pre-Merged"}
    assert list(t["unit"]) == ["task", "task-label", "task-label"] and list(t["n"]) == [3, 2, 2]
    assert t.loc[0, "p"] == pytest.approx(stats.ttest_rel([0.5, 0.6, 0.7], [0.6, 0.6, 0.9]).pvalue)


def test_the_papers_table_4_implies_thirty_paired_units():
    t4, _ = published.gw_table4()
    assert {significance.implied_df(t, p) for t, p in zip(t4["t"], t4["p"])} == {29}
    assert significance.implied_df(2.0, 2 * stats.t.sf(2.0, 8)) == 8


def test_the_papers_plans_map_to_task_names_by_its_numbering():
    plans = published.gw_plans()
    assert plans["Human Knowledge"] == [["anna_vs_carla", "breaking_down_hydrogen_peroxide"],
                                        ["gas_filled_balloons", "layers_in_test_tube"],
                                        ["model_for_making_water", "namis_careful_experiment", "natural_sugar"]]
    assert plans["GPT-o1"][1] == ["gas_filled_balloons", "layers_in_test_tube"]
    assert published.gw_plan_numbers()["GW-SMM"] == [[1, 2, 8], [4, 6, 7]]


def test_layer_prefixes_name_encoder_blocks():
    names = ["encoder.encoder.layer.4.attention.self.query.weight", "encoder.encoder.layer.4.output.dense.bias",
             "encoder.encoder.layer.5.intermediate.dense.weight", "encoder.embeddings.word_embeddings.weight"]
    assert adamerging.layer_prefixes(names) == ["encoder.encoder.layer.4.", "encoder.encoder.layer.5.",
                                                "encoder.embeddings."]


@pytest.mark.slow
def test_layer_wise_coefficients_lower_the_validation_loss(tmp_path):
    names = ["gas_filled_balloons", "natural_sugar"]
    tasks = generate_benchmark(seed=0, scale=0.06, tasks=names)
    settings = TrainSettings(backbone=TINY_RANDOM, max_epochs=2, patience=2, lr=1e-3, batch_size=16,
                             max_length=48, warmup_ratio=0.0, trainable_layers=1)
    cache = ArtifactCache(tmp_path)
    ev = MergeEvaluator(per_task.get_scorers(tasks, settings, 0, cache, progress=False), tasks, settings, 0, cache,
                        progress=False)
    merge, history = adamerging.fit_layer_coefficients(ev, tuple(names), init=0.5, steps=25, lr=0.1, batch=64,
                                                       progress=False)
    assert merge.method == "task_arithmetic" and [t for t, _ in merge.coefficients] == names
    assert all(len(c) == 1 for _, c in merge.coefficients)           # one trained layer on this backbone
    assert history["loss"].iloc[-3:].mean() < history["loss"].iloc[:3].mean()
    fitted = ev.probabilities(tuple(names), merge, "val")
    start = ev.probabilities(tuple(names), Merge("task_arithmetic", scaling=0.5), "val")
    assert any(np.abs(fitted[t] - start[t]).max() > 1e-4 for t in names)
