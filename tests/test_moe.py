"""UniMoE's parts: the MoE block, the load-balancing penalty, the distillation term, the heads."""
import math

import pytest
import torch

from scoring_lab.moe import layers as moe


def _batch(b=4, t=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, d, generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[0, 3:] = 0
    return hidden, mask


@pytest.mark.parametrize("on", [moe.TOKENS, moe.POOLED])
def test_the_block_mixes_experts_with_weights_that_sum_to_one(on):
    torch.manual_seed(0)
    block = moe.MoEBlock(8, n_experts=3, n_tasks=2, expert_hidden=16, task_dim=4, on=on).eval()
    hidden, mask = _batch()
    out, alpha = block(hidden, mask, torch.tensor([0, 1, 0, 1]))
    assert alpha.shape == (4, 3)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(4))
    assert out.shape == ((4, 6, 8) if on == moe.TOKENS else (4, 8))
    x = hidden if on == moe.TOKENS else moe.mean_pool(hidden, mask)
    by_hand = sum(alpha[:, j].view(-1, *([1] * (x.dim() - 1))) * block.experts[j](x) for j in range(3))
    torch.testing.assert_close(out, by_hand)


def test_the_gate_sees_the_task_and_only_real_tokens():
    torch.manual_seed(0)
    block = moe.MoEBlock(8, 3, 2, task_dim=4).eval()
    hidden, mask = _batch()
    a0 = block.weights(hidden, mask, torch.zeros(4, dtype=torch.long))
    a1 = block.weights(hidden, mask, torch.ones(4, dtype=torch.long))
    assert (a0 - a1).abs().max() > 1e-4
    padded = hidden.clone()
    padded[0, 3:] = 100.0                                   # what sits under the mask does not count
    torch.testing.assert_close(block.weights(padded, mask, torch.zeros(4, dtype=torch.long)), a0)


def test_load_balancing_is_zero_for_uniform_use_and_matches_a_hand_computed_value():
    assert moe.load_balancing_loss(torch.full((5, 4), 0.25)).item() == pytest.approx(0.0)
    alpha = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]])
    mean = [0.6, 0.25, 0.15]
    expected = sum((m - 1 / 3) ** 2 for m in mean) / 3
    assert moe.load_balancing_loss(alpha).item() == pytest.approx(expected)
    assert moe.load_balancing_loss(torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.25)


def test_the_distillation_term_matches_a_hand_computed_value():
    z, zt, tau = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.5]]), 2.0
    p = [1 / (1 + math.exp(-v / tau)) for v in (2.0, -1.0)]
    q = [1 / (1 + math.exp(-v / tau)) for v in (1.0, 0.5)]
    bce = -sum(qi * math.log(pi) + (1 - qi) * math.log(1 - pi) for pi, qi in zip(p, q)) / 2
    assert moe.distillation_loss(z, zt, tau).item() == pytest.approx(tau ** 2 * bce, rel=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        moe.distillation_loss(z, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="positive"):
        moe.distillation_loss(z, zt, 0.0)


def test_the_distillation_term_of_a_score_is_hintons_kl_divergence():
    z, zt, tau = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.5, -2.0]]), 3.0

    def softmax(v):
        e = [math.exp(x / tau) for x in v]
        return [x / sum(e) for x in e]
    p, q = softmax([2.0, -1.0, 0.5]), softmax([1.0, 0.5, -2.0])
    kl = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
    assert moe.distillation_loss(z, zt, tau, "multiclass").item() == pytest.approx(tau ** 2 * kl, rel=1e-5)
    # logits that differ by a constant are the same distribution: nothing to distil
    assert moe.distillation_loss(zt + 4.0, zt, tau, "multiclass").item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="multilabel or multiclass"):
        moe.distillation_loss(z, zt, tau, "ordinal")


def test_a_response_without_a_teacher_logit_fails_loudly():
    table = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0, 1.0])}
    assert moe.teacher_logits_for(["b", "a"], table, "t").tolist() == [[0.0, 1.0], [1.0, 2.0]]
    with pytest.raises(KeyError, match=r"task 't': 1 response\(s\) have no teacher logits, e.g. ids \['c'\]"):
        moe.teacher_logits_for(["a", "c"], table, "t")


def test_heads_per_task_and_a_new_head_for_a_new_task():
    heads = moe.TaskHeads(8, {"x": 3, "y": 5}, hidden=4)
    v = torch.randn(2, 8)
    assert heads(v, "x").shape == (2, 3) and heads(v, "y").shape == (2, 5)
    heads.add("z", 2)
    assert heads(v, "z").shape == (2, 2)
    with pytest.raises(KeyError, match="no head for task 'w'"):
        heads(v, "w")
    with pytest.raises(ValueError, match="has a head already"):
        heads.add("x", 3)
