"""paths.environment: variables set for a block, then each restored to its value or absence."""
import os

import pytest

from scoring_lab.paths import environment


def test_environment_sets_then_restores_values_and_absence(monkeypatch):
    monkeypatch.setenv("SCORING_LAB_T1", "before")
    monkeypatch.delenv("SCORING_LAB_T2", raising=False)
    with pytest.raises(RuntimeError):
        with environment(SCORING_LAB_T1="during", SCORING_LAB_T2="new"):
            assert (os.environ["SCORING_LAB_T1"], os.environ["SCORING_LAB_T2"]) == ("during", "new")
            raise RuntimeError("restored even when the block fails")
    assert os.environ["SCORING_LAB_T1"] == "before" and "SCORING_LAB_T2" not in os.environ


def test_results_tag_keeps_each_loader_option_apart():
    from scoring_lab.paths import results_tag

    assert results_tag("default", "synthetic", "synthetic") == "default"
    assert results_tag("default", "synthetic", "synthetic", {}) == "default"
    assert results_tag("default", "synthetic", "synthetic", {"view": "holistic"}) == "default-view-holistic"
    assert results_tag("smoke", "csv", "synthetic", {"text_column": "answer"}) == "smoke-csv-text_column-answer"
    long = results_tag("default", "csv", "synthetic", {"label_columns": ["a" * 20, "b" * 20], "prompt_column": "q"})
    assert long.startswith("default-csv-options-") and len(long) == len("default-csv-options-") + 8
    assert long == results_tag("default", "csv", "synthetic", {"prompt_column": "q",
                                                               "label_columns": ["a" * 20, "b" * 20]})
