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
