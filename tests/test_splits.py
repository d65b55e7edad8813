import numpy as np

from scoring_lab.data.splits import carve_validation
from scoring_lab.data.task import Split


def _split(labels):
    n = len(labels)
    return Split(ids=[f"r{i}" for i in range(n)], texts=[f"text {i}" for i in range(n)], labels=labels)


def test_validation_is_stratified_seeded_and_loses_nothing():
    rng = np.random.default_rng(0)
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])[rng.integers(0, 4, size=400)]
    train, val = carve_validation(_split(labels), 0.1, seed=3)
    assert len(train) + len(val) == 400 and len(val) == 40
    assert set(train.ids).isdisjoint(val.ids)
    # stratified: each combination's share in val is within 2 responses of its share overall
    for combo in np.unique(labels, axis=0):
        overall = (labels == combo).all(1).mean()
        in_val = (val.labels == combo).all(1).sum()
        assert abs(in_val - overall * 40) <= 2
    again, val2 = carve_validation(_split(labels), 0.1, seed=3)
    assert list(val2.ids) == list(val.ids)
    _, other = carve_validation(_split(labels), 0.1, seed=4)
    assert list(other.ids) != list(val.ids)


def test_rare_combinations_stay_in_train():
    labels = np.array([[0, 0]] * 60 + [[1, 0]] * 60 + [[1, 1]] * 3)  # 3 < ceil(1 / 0.1) = 10
    train, val = carve_validation(_split(labels), 0.1, seed=0)
    assert (train.labels == [1, 1]).all(1).sum() == 3
    assert not (val.labels == [1, 1]).all(1).any()
    assert len(train) + len(val) == 123


def test_zero_fraction_gives_empty_validation():
    train, val = carve_validation(_split(np.zeros((10, 2), dtype=int)), 0.0, seed=0)
    assert len(train) == 10 and len(val) == 0


def test_tiny_data_with_only_rare_combinations_still_gets_a_validation_split():
    labels = np.array([[int(b) for b in f"{i:06b}"] for i in range(45)])  # 45 distinct combinations
    train, val = carve_validation(_split(labels), 0.1, seed=0)
    assert len(val) == 4 and len(train) == 41
