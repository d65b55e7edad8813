"""Task-vector merging of scorers' encoders (TIES, task arithmetic, averaging), partial fine-tuning included."""
import pytest
import torch

from scoring_lab.merging import task_vectors as merging


def test_ties_matches_a_hand_built_example():
    base = {"w": torch.zeros(4)}
    a = {"w": torch.tensor([3.0, -1.0, 0.2, 2.0])}
    b = {"w": torch.tensor([1.0, 2.0, -0.1, -4.0])}
    # density 0.5 keeps each vector's two largest magnitudes: a -> [3, 0, 0, 2], b -> [0, 2, 0, -4]
    # elected signs (sum of the trimmed): [+, +, 0, -]; mean of the agreeing entries: [3, 2, 0, -4]
    merged = merging.merged_state(base, [a, b], "ties", density=0.5, scaling=1.0)
    torch.testing.assert_close(merged["w"], torch.tensor([3.0, 2.0, 0.0, -4.0]))
    half = merging.merged_state(base, [a, b], "ties", density=0.5, scaling=0.5)
    torch.testing.assert_close(half["w"], torch.tensor([1.5, 1.0, 0.0, -2.0]))


def test_averaging_and_task_arithmetic_are_what_they_say():
    base = {"w": torch.tensor([1.0, 1.0])}
    a, b = {"w": torch.tensor([2.0, 0.0])}, {"w": torch.tensor([4.0, 1.0])}
    torch.testing.assert_close(merging.merged_state(base, [a, b], "average")["w"], torch.tensor([3.0, 0.5]))
    torch.testing.assert_close(merging.merged_state(base, [a, b], "task_arithmetic", scaling=0.5)["w"],
                               torch.tensor([3.0, 0.5]))     # 1 + 0.5 * ((2-1) + (4-1)), 1 + 0.5 * (-1 + 0)


def test_partial_fine_tuning_leaves_untrained_parameters_at_the_base_and_heads_out():
    base = {"low": torch.ones(3), "top": torch.zeros(2)}
    a = {"top": torch.tensor([1.0, 0.0]), "head.weight": torch.ones(2)}      # trained only its top layer
    b = {"top": torch.tensor([0.0, 1.0]), "low": torch.tensor([2.0, 2.0, 2.0]), "head.weight": torch.zeros(2)}
    merged = merging.merged_state(base, [a, b], "average")
    assert set(merged) == {"low", "top"}                                    # never a head
    torch.testing.assert_close(merged["top"], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(merged["low"], torch.tensor([1.5, 1.5, 1.5]))  # a's tau is 0 there


def test_bad_merges_say_what_is_wrong():
    base = {"w": torch.zeros(2)}
    with pytest.raises(KeyError, match="not in the base model"):
        merging.task_vectors([{"x": torch.zeros(2)}], base)
    with pytest.raises(ValueError, match="fine-tuned shape"):
        merging.task_vectors([{"w": torch.zeros(3)}], base)
    with pytest.raises(ValueError, match="merge method"):
        merging.merge_vectors([{"w": torch.zeros(2)}], "model_soup")
    with pytest.raises(ValueError, match="density"):
        merging.merge_vectors([{"w": torch.zeros(2)}], "ties", density=0)


def test_weighted_methods_match_hand_computed_values():
    base = {"w": torch.zeros(4)}
    a, b = {"w": torch.tensor([2.0, 0.0, 1.0, -1.0])}, {"w": torch.tensor([0.0, 4.0, 1.0, 1.0])}
    lin = merging.merged_state(base, [a, b], "linear", weights=(3.0, 1.0))["w"]
    assert torch.allclose(lin, torch.tensor([1.5, 1.0, 1.0, -0.5]))
    ta = merging.merged_state(base, [a, b], "task_arithmetic", scaling=0.5, weights=(1.0, 0.5))["w"]
    assert torch.allclose(ta, torch.tensor([1.0, 1.0, 0.75, -0.25]))
    # peft's TIES elects each entry's sign from the unweighted vectors (entry 3: -1 + 1 = 0 counts as +),
    # then averages the weighted entries that agree: b's 0.5 alone
    ties = merging.merged_state(base, [a, b], "ties", density=1.0, weights=(1.0, 0.5))["w"]
    assert torch.allclose(ties, torch.tensor([2.0, 2.0, 0.75, 0.5]))


def test_dare_is_seeded_and_rescales_what_it_keeps():
    base = {"w": torch.zeros(1000)}
    a = {"w": torch.ones(1000)}
    one = merging.merged_state(base, [a], "dare_linear", density=0.25, seed=3)["w"]
    again = merging.merged_state(base, [a], "dare_linear", density=0.25, seed=3)["w"]
    other = merging.merged_state(base, [a], "dare_linear", density=0.25, seed=4)["w"]
    assert torch.equal(one, again) and not torch.equal(one, other)
    kept = one[one != 0]
    assert torch.allclose(kept, torch.full_like(kept, 4.0)) and 180 < len(kept) < 320
    state = torch.random.get_rng_state()
    merging.merged_state(base, [a], "dare_ties", density=0.5, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())   # the caller's random state is untouched


def test_slerp_interpolates_on_the_arc():
    base = {"w": torch.zeros(2)}
    a, b = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}
    mid = merging.merged_state(base, [a, b], "slerp", weights=(1.0, 1.0))["w"]
    assert torch.allclose(mid, torch.tensor([2 ** -0.5, 2 ** -0.5]), atol=1e-6)   # unit length, not 0.5, 0.5
    assert torch.allclose(merging.merged_state(base, [a, b], "slerp", weights=(1.0, 0.0))["w"], a["w"])
    with pytest.raises(ValueError, match="two"):
        merging.merged_state(base, [a, b, a], "slerp")


def test_a_density_per_member_trims_each_vector_at_its_own_share():
    base = {"w": torch.zeros(4)}
    a = {"w": torch.tensor([3.0, -1.0, 0.2, 2.0])}
    b = {"w": torch.tensor([1.0, 2.0, -0.1, -4.0])}
    # a keeps its largest quarter [3, 0, 0, 0], b all of itself; signs [+, +, -, -]; agreeing means
    merged = merging.merged_state(base, [a, b], "ties", density=(0.25, 1.0), scaling=1.0)
    torch.testing.assert_close(merged["w"], torch.tensor([2.0, 2.0, -0.1, -4.0]))
    torch.manual_seed(0)
    v = [{"p": torch.randn(40, 30)} for _ in range(3)]
    for method in ("ties", "dare_ties", "dare_linear"):   # equal densities: peft's own merge, to the bit
        one = merging.merge_vectors(v, method, 0.3, weights=[0.5, 1.0, 0.2], seed=3)["p"]
        each = merging.merge_vectors(v, method, (0.3, 0.3, 0.3), weights=[0.5, 1.0, 0.2], seed=3)["p"]
        assert torch.equal(one, each)
        assert not torch.equal(one, merging.merge_vectors(v, method, (0.3, 0.9, 0.1), weights=[0.5, 1.0, 0.2],
                                                          seed=3)["p"])
    with pytest.raises(ValueError, match="one density per task vector"):
        merging.merge_vectors(v, "ties", (0.3, 0.2))
    with pytest.raises(ValueError, match="one density per task vector"):
        merging.merge_vectors(v, "task_arithmetic", (0.3, 0.2, 0.1))
    with pytest.raises(ValueError, match="density"):
        merging.merge_vectors(v, "ties", (0.3, 0.0, 0.1))
