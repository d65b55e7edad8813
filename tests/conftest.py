"""Tests never write into the developer's cache or results folders."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_results(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("SCORING_LAB_RESULTS", str(tmp_path_factory.mktemp("results")))
    yield
    mp.undo()
